variable "region" {
  type        = string
  description = "AWS region of the state bucket."
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "state_bucket" {
  type        = string
  description = "Name of the S3 bucket that holds every environment's Terraform state."
  default     = "shop-api-tfstate"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be 3-63 lower-case letters, digits and '-'."
  }
}
