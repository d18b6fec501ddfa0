# Each PostgreSQL service's own database credentials, in AWS Secrets Manager. The Job `db-provision`
# (k8s/provision: `python -m sink_kit.provision`) creates each service's login and database
# from these, with the RDS-managed master secret, before every deploy; the consumers read their
# URL through an ExternalSecret (k8s/base/db/credentials.yaml). No credential is typed by hand.
# External Secrets' own role, which may read these, is in modules/iam with the other roles.
#
# Rotation: taint a password (`terraform apply -replace='module.service_databases.random_password.this["stats-aggregator"]'`),
# then deploy: the Job sets the new password and External Secrets refreshes the Secret (hourly,
# or at once with `kubectl annotate externalsecret ... force-sync=$(date +%s)`).

locals {
  users = { for svc, db in var.services : svc => replace(svc, "-", "_") }
}

resource "random_password" "this" {
  for_each = var.services
  length   = 40
  special  = false # the password travels in a URL
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Rotated by replacing the random_password and re-running the provision Job (see above), not by a Lambda.
  for_each                = var.services
  name                    = "${var.name_prefix}/${each.key}/database"
  description             = "Database login of ${each.key}: user, password, host, database, URL"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each  = var.services
  secret_id = aws_secretsmanager_secret.this[each.key].id
  secret_string = jsonencode({
    username = local.users[each.key]
    password = random_password.this[each.key].result
    host     = var.host
    port     = var.port
    dbname   = each.value
    url      = "postgresql+psycopg2://${local.users[each.key]}:${random_password.this[each.key].result}@${var.host}:${var.port}/${each.value}?sslmode=require"
  })
}
