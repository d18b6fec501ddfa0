# One IAM role per consumer, and one read-only role for the read API, each bound to its
# Kubernetes ServiceAccount through an EKS Pod Identity association. Each role may touch only its own table, bucket, key and Kafka topics
# and group (the Kafka statements, in kafka.tf, apply when MSK with IAM auth is used; see
# modules/msk).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  msk_prefix = var.msk == null ? "" : "arn:aws:kafka:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
  msk_path   = var.msk == null ? "" : "${var.msk.cluster_name}/${var.msk.cluster_uuid}"
  topics = {
    "event-store-writer" = {
      read  = ["dbserver1.public.*", "user-events"]
      write = ["event-store-writer.dlq"]
    }
    "stats-aggregator" = {
      read  = ["dbserver1.public.orders", "dbserver1.public.order_items", "dbserver1.public.products", "dbserver1.public.customers", "user-events"]
      write = ["stats-aggregator.dlq", "alerts.low-stock"]
    }
    "search-indexer" = {
      read  = ["dbserver1.public.products"]
      write = ["search-indexer.dlq"]
    }
    "analytics-flusher" = {
      read  = ["dbserver1.public.orders", "dbserver1.public.order_items"]
      write = ["analytics-flusher.dlq"]
    }
  }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

# The event store writes to PostgreSQL only: without MSK it needs no AWS permission at all.
data "aws_iam_policy_document" "event_store_writer" {
  source_policy_documents = var.msk == null ? [] : [data.aws_iam_policy_document.kafka["event-store-writer"].json]
}

resource "aws_iam_role" "event_store_writer" {
  name               = "${var.name_prefix}-event-store-writer"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "event_store_writer" {
  count  = var.msk == null ? 0 : 1
  name   = "event-store-writer"
  role   = aws_iam_role.event_store_writer.id
  policy = data.aws_iam_policy_document.event_store_writer.json
}

resource "aws_eks_pod_identity_association" "event_store_writer" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = "event-store-writer"
  role_arn        = aws_iam_role.event_store_writer.arn
}

data "aws_iam_policy_document" "stats_aggregator" {
  source_policy_documents = var.msk == null ? [] : [data.aws_iam_policy_document.kafka["stats-aggregator"].json]

  statement {
    sid = "InventoryTable"
    # The stock projection's conditional PutItem; DescribeTable at start (the table exists).
    actions   = ["dynamodb:PutItem", "dynamodb:DescribeTable"]
    resources = [var.inventory_table_arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

}

resource "aws_iam_role" "stats_aggregator" {
  name               = "${var.name_prefix}-stats-aggregator"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "stats_aggregator" {
  name   = "stats-aggregator"
  role   = aws_iam_role.stats_aggregator.id
  policy = data.aws_iam_policy_document.stats_aggregator.json
}

resource "aws_eks_pod_identity_association" "stats_aggregator" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = "stats-aggregator"
  role_arn        = aws_iam_role.stats_aggregator.arn
}

data "aws_iam_policy_document" "search_indexer" {
  source_policy_documents = var.msk == null ? [] : [data.aws_iam_policy_document.kafka["search-indexer"].json]

  statement {
    sid = "SearchTable"
    # TransactWriteItems of Puts (authorised as PutItem), the large-product protocol's PutItem and
    # UpdateItem, BatchGetItem/GetItem reads, Query (search), DescribeTable at start.
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DescribeTable"]
    resources = [var.search_table_arn, "${var.search_table_arn}/index/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

}

resource "aws_iam_role" "search_indexer" {
  name               = "${var.name_prefix}-search-indexer"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "search_indexer" {
  name   = "search-indexer"
  role   = aws_iam_role.search_indexer.id
  policy = data.aws_iam_policy_document.search_indexer.json
}

resource "aws_eks_pod_identity_association" "search_indexer" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = "search-indexer"
  role_arn        = aws_iam_role.search_indexer.arn
}

data "aws_iam_policy_document" "analytics_flusher" {
  source_policy_documents = var.msk == null ? [] : [data.aws_iam_policy_document.kafka["analytics-flusher"].json]

  statement {
    sid = "DataLakeObjects"
    # Single-request PutObject of each part; nothing is read back by the service.
    actions   = ["s3:PutObject"]
    resources = ["${var.data_lake_bucket_arn}/*"]
  }
  statement {
    sid = "DataLakeList"
    # HeadBucket at start; and a missing Iceberg file is a 404 (not a 403) only with ListBucket.
    actions   = ["s3:ListBucket"]
    resources = [var.data_lake_bucket_arn]
  }

  # The Iceberg tables (pyiceberg's GlueCatalog, LAKE_CATALOG=glue) in the lake's Glue database
  # (modules/glue-catalog), which Terraform creates: no glue:CreateDatabase.
  statement {
    sid = "LakeCatalogDatabase"
    # At start (the namespace exists), and before creating a table (its location) or
    # committing to one (GlueCatalog asks whether the database is an S3 Tables one).
    actions   = ["glue:GetDatabase"]
    resources = [var.lake_catalog.catalog_arn, var.lake_catalog.database_arn]
  }
  statement {
    sid = "LakeCatalogTables"
    # Loading a table; listing the database's tables (the service's maintenance job goes
    # over each); creating a missing changes or report table; a commit reads the table (its
    # VersionId) and updates it with that VersionId (Glue's optimistic locking).
    actions   = ["glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"]
    resources = [var.lake_catalog.catalog_arn, var.lake_catalog.database_arn, var.lake_catalog.tables_arn]
  }
  statement {
    sid = "LakeWarehouseObjects"
    # The tables' data, manifest and metadata files: written, read back (metadata, manifests,
    # the existence check before a metadata file is written) and deleted (the files of a
    # commit the catalog refused).
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.data_lake_bucket_arn}/${var.lake_catalog.warehouse_prefix}/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

}

resource "aws_iam_role" "analytics_flusher" {
  name               = "${var.name_prefix}-analytics-flusher"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "analytics_flusher" {
  name   = "analytics-flusher"
  role   = aws_iam_role.analytics_flusher.id
  policy = data.aws_iam_policy_document.analytics_flusher.json
}

resource "aws_eks_pod_identity_association" "analytics_flusher" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = "analytics-flusher"
  role_arn        = aws_iam_role.analytics_flusher.arn
}

# The read API (services/query-api): reads only. The search index and the stock table (items,
# batches, queries, on the tables and their indexes); the lake's Glue database and its tables'
# files under the warehouse prefix; the platform key to decrypt them. No write action, no
# Kafka: MSK statements are not merged in. DescribeTable (metadata, on the tables only) is
# what /readyz asks to tell a reachable table from a missing one.
data "aws_iam_policy_document" "query_api" {
  statement {
    sid     = "ReadTables"
    actions = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
    resources = [
      var.search_table_arn, "${var.search_table_arn}/index/*",
      var.inventory_table_arn, "${var.inventory_table_arn}/index/*",
    ]
  }

  statement {
    sid       = "DescribeTablesForReadiness"
    actions   = ["dynamodb:DescribeTable"]
    resources = [var.search_table_arn, var.inventory_table_arn]
  }

  statement {
    sid       = "LakeCatalogDatabase"
    actions   = ["glue:GetDatabase"]
    resources = [var.lake_catalog.catalog_arn, var.lake_catalog.database_arn]
  }
  statement {
    sid = "LakeCatalogTables"
    # Loading a table (its current metadata file) and listing the database's tables.
    actions   = ["glue:GetTable", "glue:GetTables"]
    resources = [var.lake_catalog.catalog_arn, var.lake_catalog.database_arn, var.lake_catalog.tables_arn]
  }
  statement {
    sid = "LakeWarehouseObjects"
    # The tables' metadata, manifests and data files.
    actions   = ["s3:GetObject"]
    resources = ["${var.data_lake_bucket_arn}/${var.lake_catalog.warehouse_prefix}/*"]
  }
  statement {
    sid       = "LakeWarehouseList"
    actions   = ["s3:ListBucket"]
    resources = [var.data_lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lake_catalog.warehouse_prefix}/*"]
    }
  }

  statement {
    sid       = "DecryptWithDataKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "query_api" {
  name               = "${var.name_prefix}-query-api"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "query_api" {
  name   = "query-api-read-only"
  role   = aws_iam_role.query_api.id
  policy = data.aws_iam_policy_document.query_api.json
}

resource "aws_eks_pod_identity_association" "query_api" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = "query-api"
  role_arn        = aws_iam_role.query_api.arn
}

# External Secrets Operator's controller (ServiceAccount external-secrets in its namespace): it
# reads the services' database secrets (modules/service-databases) and the RDS master secret
# into the cluster (k8s/base/db/credentials.yaml), nothing else.
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid       = "ReadDatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = var.external_secrets_readable_arns
  }
  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "external_secrets" {
  name               = "${var.name_prefix}-external-secrets"
  assume_role_policy = data.aws_iam_policy_document.assume.json
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
