variable "name" {
  description = "Name prefix of the VPC's resources."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; split into three private and three public /20s."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, staging) instead of one per zone."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow logs."
  type        = string
}
