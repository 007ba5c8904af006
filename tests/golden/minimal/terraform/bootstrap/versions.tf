# Bootstrap: creates the bucket every environment keeps its state in. Apply it once, by hand,
# with local state (keep terraform.tfstate of this folder safe, or import the bucket later).
terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.80.0"
    }
  }
}

provider "aws" {
  region = var.region
}
