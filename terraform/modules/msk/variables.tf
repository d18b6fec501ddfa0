variable "name" {
  type = string
}

variable "kafka_version" {
  type    = string
  default = "3.9.x"
}

variable "instance_type" {
  type    = string
  default = "kafka.m7g.large"
}

variable "volume_size_gb" {
  type    = number
  default = 500
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr_block" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the clients (the EKS cluster's)."
  type        = string
}

variable "kms_key_arn" {
  type = string
}
