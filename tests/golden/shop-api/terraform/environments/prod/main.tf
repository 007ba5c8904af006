# prod: the shared platform module with this environment's values. Credentials come
# from the environment running Terraform (AWS_PROFILE, SSO, or an OIDC-assumed role in CI).

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Service     = "shop-api"
      Environment = "prod"
      ManagedBy   = "terraform"
    }
  }
}

module "platform" {
  source = "../../modules/platform"

  name               = "shop-api"
  environment        = "prod"
  availability_zones = var.availability_zones
  kubernetes_version = var.kubernetes_version
  node_instance_type = var.node_instance_type
  node_min_size      = var.node_min_size
  node_max_size      = var.node_max_size
  api_allowed_cidrs  = var.api_allowed_cidrs
  github_repository  = var.github_repository
  github_environment = "production"
  # one ECR repository per account: created by prod only
  create_registry = true
}
