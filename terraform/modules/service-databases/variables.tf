variable "name_prefix" {
  description = "Prefix of the secret names and the role, e.g. cdc-platform-prod."
  type        = string
}

variable "services" {
  description = "PostgreSQL services and their databases: each gets its own login."
  type        = map(string)
  default = {
    "event-store-writer" = "event_store"
    "stats-aggregator"   = "stats"
  }
}

variable "host" {
  description = "The database's host name (the RDS endpoint without the port)."
  type        = string
}

variable "port" {
  type    = number
  default = 5432
}

variable "master_secret_arn" {
  description = "The RDS-managed master user secret (the provision Job's credentials)."
  type        = string
}

variable "kms_key_arn" {
  type = string
}

variable "cluster_name" {
  type = string
}

variable "external_secrets_namespace" {
  type    = string
  default = "external-secrets"
}
