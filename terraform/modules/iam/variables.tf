variable "name_prefix" {
  description = "Prefix of the role names, e.g. cdc-platform-prod."
  type        = string
}

variable "cluster_name" {
  type = string
}

variable "namespace" {
  description = "Kubernetes namespace of the consumers' ServiceAccounts."
  type        = string
  default     = "cdc-consumers"
}

variable "search_table_arn" {
  type = string
}

variable "inventory_table_arn" {
  type = string
}

variable "data_lake_bucket_arn" {
  type = string
}

variable "lake_catalog" {
  description = "The lake's Glue database (modules/glue-catalog): the ARNs of its catalog, database and tables, and the warehouse prefix of the tables' files in the data lake bucket."
  type = object({
    catalog_arn      = string
    database_arn     = string
    tables_arn       = string
    warehouse_prefix = string
  })
}

variable "kms_key_arn" {
  type = string
}

variable "msk" {
  description = "The MSK cluster when Kafka is MSK with IAM auth; null for in-cluster Strimzi."
  type = object({
    cluster_arn  = string
    cluster_name = string
    cluster_uuid = string
  })
  default = null
}

variable "operator_namespace" {
  description = "Kubernetes namespace of the operator's ServiceAccount (k8s/operator/deploy)."
  type        = string
  default     = "cdc-operator"
}

variable "external_secrets_readable_arns" {
  description = "Secrets External Secrets Operator may read: the services' database logins and the RDS master secret."
  type        = list(string)
}

variable "external_secrets_namespace" {
  type    = string
  default = "external-secrets"
}
