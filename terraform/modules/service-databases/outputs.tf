output "secret_names" {
  description = "Per service, the Secrets Manager secret its ExternalSecret reads."
  value       = { for svc, s in aws_secretsmanager_secret.this : svc => s.name }
}

output "secret_arns" {
  description = "The secrets' ARNs, for the External Secrets role (modules/iam)."
  value       = [for s in aws_secretsmanager_secret.this : s.arn]
}
