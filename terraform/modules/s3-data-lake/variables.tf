variable "environment" {
  description = "staging or prod: part of the bucket name cdc-platform-data-lake-<environment>."
  type        = string
}

variable "kms_key_arn" {
  type = string
}
