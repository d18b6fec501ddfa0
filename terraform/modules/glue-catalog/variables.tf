variable "database_name" {
  description = "The Glue database of the lake's Iceberg tables: analytics-flusher's LAKE_NAMESPACE."
  type        = string

  validation {
    # The flusher's LAKE_NAMESPACE accepts the same (settings.py), and Glue lower-cases names.
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.database_name))
    error_message = "database_name: lower-case letters, digits and underscores."
  }
}

variable "bucket_name" {
  description = "The data lake bucket (modules/s3-data-lake) that holds the tables' files."
  type        = string
}

variable "warehouse_prefix" {
  description = "Key prefix of the Iceberg warehouse in the bucket: LAKE_WAREHOUSE is s3://<bucket>/<prefix>."
  type        = string
  default     = "warehouse"
}
