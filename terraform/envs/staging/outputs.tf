output "cluster_name" {
  value = module.eks.cluster_name
}

output "ecr_registry" {
  description = "Registry host for docker login and the image names."
  value       = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.region}.amazonaws.com"
}

output "ecr_repository_urls" {
  value = module.ecr.repository_urls
}

output "data_lake_bucket" {
  value = module.data_lake.bucket_name
}

output "lake_catalog_database" {
  description = "The Glue database of the lake's Iceberg tables: analytics-flusher's LAKE_NAMESPACE."
  value       = module.lake_catalog.database_name
}

output "lake_warehouse" {
  description = "analytics-flusher's LAKE_WAREHOUSE."
  value       = module.lake_catalog.warehouse
}

output "postgres_endpoint" {
  value = module.postgres.endpoint
}

output "postgres_master_secret_arn" {
  value = module.postgres.master_user_secret_arn
}

output "consumer_role_arns" {
  value = module.iam.role_arns
}

output "query_api_role_arn" {
  description = "The read API's read-only role; on an IRSA cluster, its ServiceAccount's eks.amazonaws.com/role-arn."
  value       = module.iam.query_api_role_arn
}

output "msk_bootstrap_brokers" {
  value = var.use_msk ? module.msk[0].bootstrap_brokers_sasl_iam : null
}

output "github_deploy_role_arn" {
  description = "The GitHub environment's variable AWS_DEPLOY_ROLE_ARN."
  value       = module.github_deploy.role_arn
}
