variable "name" {
  type        = string
  description = "Service name: the registry, and with the environment the cluster, are named after it."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "environment" {
  type        = string
  description = "Environment this platform serves (staging, prod, ...)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters and digits, starting with a letter."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes minor version, e.g. 1.31."

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.31."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the cluster's VPC (a /16 is split into private and public subnets)."
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a valid /16 CIDR block."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones the subnets and nodes spread over (named, so the set never changes by itself)."

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "list two or three availability zones."
  }
}

variable "node_instance_type" {
  type        = string
  description = "EC2 instance type of the default managed node group."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.node_instance_type))
    error_message = "node_instance_type must be an EC2 instance type such as m6i.large."
  }
}

variable "node_min_size" {
  type        = number
  description = "Minimum number of nodes in the default node group."

  validation {
    condition     = var.node_min_size >= 1 && floor(var.node_min_size) == var.node_min_size
    error_message = "node_min_size must be a whole number of at least 1."
  }
}

variable "node_max_size" {
  type        = number
  description = "Maximum number of nodes in the default node group (at least node_min_size)."

  validation {
    condition     = var.node_max_size >= 1 && var.node_max_size <= 100
    error_message = "node_max_size must be between 1 and 100."
  }
}

variable "api_allowed_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint (CI runners, operators)."

  validation {
    condition     = length(var.api_allowed_cidrs) > 0 && alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "api_allowed_cidrs must list valid CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "create_registry" {
  type        = bool
  description = "Create the ECR repository here (set false in all but one environment sharing an account)."
  default     = true
}

variable "registry_repository" {
  type        = string
  description = "Name of the ECR repository service.image names (the path after the registry host)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*$", var.registry_repository))
    error_message = "registry_repository must be an ECR repository name."
  }
}

variable "registry_url" {
  type        = string
  description = "service.image: the repository CI pushes to and the nodes pull from."

  validation {
    condition     = length(var.registry_url) > 0
    error_message = "registry_url must be set."
  }
}

variable "default_branch" {
  type        = string
  description = "Branch whose CI runs (with v* tags) may push images (the push role's trust)."
  default     = "main"
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose deploy jobs may assume the deploy role."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. acme/shop-api."
  }
}

variable "github_environment" {
  type        = string
  description = "GitHub environment (staging, production) whose jobs may assume the deploy role."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,255}$", var.github_environment))
    error_message = "github_environment must be a GitHub environment name such as production."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}

variable "app_namespace" {
  type        = string
  description = "Namespace the environment's Kustomize overlay deploys to."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "app_namespace must be a DNS-1123 label."
  }
}

variable "acme_email" {
  type        = string
  description = "Contact address of the ACME account the ClusterIssuer registers (optional; empty registers none)."
  default     = ""

  validation {
    condition     = var.acme_email == "" || can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", var.acme_email))
    error_message = "acme_email must be empty or an e-mail address."
  }
}
