variable "region" {
  type        = string
  description = "AWS region of the state bucket."
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "name" {
  type        = string
  description = "Service name: the state bucket's name starts with it."
  default     = "mini"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and '-'."
  }
}

variable "state_bucket" {
  type        = string
  description = "Name of the S3 bucket that holds every environment's Terraform state; null derives <name>-tfstate-<account id> (S3 bucket names are global)."
  default     = null

  validation {
    condition     = var.state_bucket == null || can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be 3-63 lower-case letters, digits and '-'."
  }
}
