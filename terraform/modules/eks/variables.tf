variable "cluster_name" {
  type = string
}

variable "kubernetes_version" {
  type    = string
  default = "1.31"
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's interfaces and the nodes."
  type        = list(string)
}

variable "public_endpoint_cidrs" {
  description = "Networks allowed to reach the API server from outside the VPC; empty keeps it private."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  type = string
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
