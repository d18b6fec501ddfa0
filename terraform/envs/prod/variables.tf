variable "environment" {
  type = string
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "vpc_cidr_block" {
  type = string
}

variable "single_nat_gateway" {
  type    = bool
  default = false
}

variable "kubernetes_version" {
  type    = string
  default = "1.31"
}

variable "eks_public_endpoint_cidrs" {
  description = "Operator networks allowed to reach the EKS API from outside the VPC (empty: private only)."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  type    = list(string)
  default = ["m6i.large"]
}

variable "node_min_size" {
  type    = number
  default = 3
}

variable "node_max_size" {
  type    = number
  default = 6
}

variable "use_msk" {
  description = "Amazon MSK with IAM auth instead of the in-cluster Strimzi Kafka (k8s/platform)."
  type        = bool
  default     = false
}

variable "lake_namespace" {
  description = "The Glue database of the lake's Iceberg tables: analytics-flusher's LAKE_NAMESPACE in k8s/overlays/<env>."
  type        = string
  default     = "analytics"
}

variable "rds_instance_class" {
  type    = string
  default = "db.m6g.large"
}

variable "rds_multi_az" {
  type    = bool
  default = true
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose deploy workflow may deploy here."
  type        = string
  default     = "cdc-platform/cdc-platform"
}

variable "github_environment" {
  description = "GitHub environment a deploying job runs in (its protection rules approve prod)."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "GitHub's OIDC provider if this account already has one (another env made it)."
  type        = string
  default     = null
}
