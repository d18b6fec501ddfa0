# One environment of the platform: network, EKS, PostgreSQL, DynamoDB, the data lake and its
# Glue catalog, ECR, one IAM role per consumer, a read-only one for the read API (query-api)
# and, optionally, MSK. Everything environment-specific is a variable (terraform.tfvars);
# envs/staging and envs/prod differ only there and in backend.tf.

data "aws_caller_identity" "current" {}

locals {
  name     = "cdc-platform-${var.environment}"
  services = ["event-store-writer", "stats-aggregator", "search-indexer", "analytics-flusher", "query-api"]
}

data "aws_iam_policy_document" "platform_key_policy" {
  # A key policy's resource is always the key itself ("*" means "this key").
  #checkov:skip=CKV_AWS_109:Key policy: the account root must administer the key, or it becomes unmanageable.
  #checkov:skip=CKV_AWS_111:Key policy: "*" is the key itself; principals are the account and CloudWatch Logs.
  #checkov:skip=CKV_AWS_356:Key policy: "*" is the key itself, the only resource a key policy can name.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_kms_key" "platform" {
  description             = "${local.name}: EKS secrets, RDS, DynamoDB, S3, MSK, ECR, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.platform_key_policy.json
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.platform.key_id
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = var.vpc_cidr_block
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = aws_kms_key.platform.arn
}

module "eks" {
  source                = "../../modules/eks"
  cluster_name          = local.name
  kubernetes_version    = var.kubernetes_version
  subnet_ids            = module.network.private_subnet_ids
  public_endpoint_cidrs = var.eks_public_endpoint_cidrs
  kms_key_arn           = aws_kms_key.platform.arn
  node_instance_types   = var.node_instance_types
  node_min_size         = var.node_min_size
  node_max_size         = var.node_max_size
}

module "msk" {
  source                   = "../../modules/msk"
  count                    = var.use_msk ? 1 : 0
  name                     = local.name
  vpc_id                   = module.network.vpc_id
  vpc_cidr_block           = module.network.vpc_cidr_block
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = aws_kms_key.platform.arn
}

module "postgres" {
  source                   = "../../modules/rds-postgres"
  name                     = "${local.name}-sink"
  instance_class           = var.rds_instance_class
  multi_az                 = var.rds_multi_az
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = aws_kms_key.platform.arn
}

module "dynamodb" {
  source      = "../../modules/dynamodb"
  kms_key_arn = aws_kms_key.platform.arn
}

module "data_lake" {
  source      = "../../modules/s3-data-lake"
  environment = var.environment
  kms_key_arn = aws_kms_key.platform.arn
}

# The catalog of the lake's Iceberg tables: a Glue database, its files in the lake's bucket.
module "lake_catalog" {
  source        = "../../modules/glue-catalog"
  database_name = var.lake_namespace
  bucket_name   = module.data_lake.bucket_name
}

module "ecr" {
  source       = "../../modules/ecr"
  repositories = concat(local.services, ["cdc-operator", "debezium-connect"])
  kms_key_arn  = aws_kms_key.platform.arn
}

module "iam" {
  source               = "../../modules/iam"
  name_prefix          = local.name
  cluster_name         = module.eks.cluster_name
  search_table_arn     = module.dynamodb.product_search_index_arn
  inventory_table_arn  = module.dynamodb.inventory_realtime_arn
  data_lake_bucket_arn = module.data_lake.bucket_arn
  lake_catalog = {
    catalog_arn      = module.lake_catalog.catalog_arn
    database_arn     = module.lake_catalog.database_arn
    tables_arn       = module.lake_catalog.tables_arn
    warehouse_prefix = module.lake_catalog.warehouse_prefix
  }
  kms_key_arn = aws_kms_key.platform.arn
  external_secrets_readable_arns = concat(
    module.service_databases.secret_arns, [module.postgres.master_user_secret_arn]
  )
  msk = var.use_msk ? {
    cluster_arn  = module.msk[0].cluster_arn
    cluster_name = module.msk[0].cluster_name
    cluster_uuid = module.msk[0].cluster_uuid
  } : null
}

# GitHub Actions deploys this environment through OIDC (.github/workflows/deploy.yml).
module "github_deploy" {
  source             = "../../modules/github-deploy"
  name_prefix        = local.name
  github_repository  = var.github_repository
  github_environment = var.github_environment
  oidc_provider_arn  = var.github_oidc_provider_arn
  cluster_name       = module.eks.cluster_name
  cluster_arn        = module.eks.cluster_arn
}

# Each PostgreSQL service's login in Secrets Manager, read by External Secrets (k8s/base).
module "service_databases" {
  source      = "../../modules/service-databases"
  name_prefix = local.name
  host        = module.postgres.address
  kms_key_arn = aws_kms_key.platform.arn
}
