variable "repositories" {
  description = "Image names; each becomes the repository cdc-platform/<name>."
  type        = list(string)
}

variable "kms_key_arn" {
  type = string
}
