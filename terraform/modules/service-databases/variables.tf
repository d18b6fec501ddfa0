variable "name_prefix" {
  description = "Prefix of the secret names, e.g. cdc-platform-prod."
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

variable "kms_key_arn" {
  type = string
}

