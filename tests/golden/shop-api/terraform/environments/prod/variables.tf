variable "region" {
  type        = string
  description = "AWS region of this environment."
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones of this environment."
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes minor version."
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.31."
  }
}

variable "node_instance_type" {
  type        = string
  description = "EC2 instance type of the default node group."
  default     = "m6i.large"
}

variable "node_min_size" {
  type        = number
  description = "Minimum nodes in the default node group."
  default     = 2

  validation {
    condition     = var.node_min_size >= 1
    error_message = "node_min_size must be at least 1."
  }
}

variable "node_max_size" {
  type        = number
  description = "Maximum nodes in the default node group."
  default     = 5

  validation {
    condition     = var.node_max_size >= var.node_min_size
    error_message = "node_max_size must be at least node_min_size."
  }
}

variable "api_allowed_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the Kubernetes API (set in terraform.tfvars)."

  validation {
    condition     = length(var.api_allowed_cidrs) > 0
    error_message = "list at least one CIDR block."
  }
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) allowed to deploy here through OIDC."
  default     = "acme/shop-api"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. acme/shop-api."
  }
}

variable "acme_email" {
  type        = string
  description = "Contact address of the ACME account the ClusterIssuer registers (optional, set in terraform.tfvars)."
  default     = ""
}
