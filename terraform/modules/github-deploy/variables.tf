variable "name_prefix" {
  description = "Prefix of the role name, e.g. cdc-platform-prod."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may deploy."
  type        = string
}

variable "github_environment" {
  description = "The GitHub environment a deploying job must run in (staging, production)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "GitHub's OIDC provider in this account, if another environment created it; null creates it."
  type        = string
  default     = null
}

variable "cluster_name" {
  type = string
}

variable "cluster_arn" {
  type = string
}

variable "namespace" {
  description = "The consumers' namespace, the only one the deploy role may change."
  type        = string
  default     = "cdc-consumers"
}
