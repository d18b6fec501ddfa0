# The catalog of the data lake's Iceberg tables: one AWS Glue database (analytics-flusher's
# LAKE_NAMESPACE, "analytics" by default) in the account's Glue Data Catalog. The flusher
# (pyiceberg's GlueCatalog) creates the changes tables in it and commits to them; their data
# and metadata files live in the data lake bucket under <warehouse_prefix>/<database>.db/, the
# database's location, which is also where new tables are placed whatever LAKE_WAREHOUSE says.
# Terraform owns the database so the flusher's role needs no glue:CreateDatabase.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

resource "aws_glue_catalog_database" "lake" {
  name         = var.database_name
  description  = "Iceberg tables of the CDC data lake (analytics-flusher); files in s3://${var.bucket_name}/${var.warehouse_prefix}/"
  location_uri = "s3://${var.bucket_name}/${var.warehouse_prefix}/${var.database_name}.db"
}

locals {
  glue_arn_prefix = "arn:aws:glue:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
}
