# Each PostgreSQL service's own database credentials, in AWS Secrets Manager, and the role that
# External Secrets Operator uses to read them into the cluster. The Job `db-provision`
# (k8s/provision: `python -m sink_kit.provision`) creates each service's login and database
# from these, with the RDS-managed master secret, before every deploy; the consumers read their
# URL through an ExternalSecret (k8s/base/db-credentials.yaml). No credential is typed by hand.
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

# External Secrets Operator's controller (ServiceAccount external-secrets in its namespace):
# read these secrets and the RDS master secret, nothing else.
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid       = "ReadDatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = concat([for s in aws_secretsmanager_secret.this : s.arn], [var.master_secret_arn])
  }
  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "pod_identity" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "external_secrets" {
  name               = "${var.name_prefix}-external-secrets"
  assume_role_policy = data.aws_iam_policy_document.pod_identity.json
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "read-database-secrets"
  role   = aws_iam_role.external_secrets.id
  policy = data.aws_iam_policy_document.external_secrets.json
}

resource "aws_eks_pod_identity_association" "external_secrets" {
  cluster_name    = var.cluster_name
  namespace       = var.external_secrets_namespace
  service_account = "external-secrets"
  role_arn        = aws_iam_role.external_secrets.arn
}
