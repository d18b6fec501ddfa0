output "database_name" {
  value = aws_glue_catalog_database.lake.name
}

output "warehouse" {
  description = "analytics-flusher's LAKE_WAREHOUSE."
  value       = "s3://${var.bucket_name}/${var.warehouse_prefix}"
}

output "warehouse_prefix" {
  value = var.warehouse_prefix
}

# What IAM policies name for the Glue calls on the database's tables: every Glue table action
# is authorised on the catalog, the database and the table.
output "catalog_arn" {
  value = "${local.glue_arn_prefix}:catalog"
}

output "database_arn" {
  value = aws_glue_catalog_database.lake.arn
}

output "tables_arn" {
  description = "Every table of the database (the flusher creates its own)."
  value       = "${local.glue_arn_prefix}:table/${aws_glue_catalog_database.lake.name}/*"
}
