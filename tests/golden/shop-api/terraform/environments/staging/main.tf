# staging: the shared platform module with this environment's values. Credentials come
# from the environment running Terraform (AWS_PROFILE, SSO, or an OIDC-assumed role in CI).

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Service     = "shop-api"
      Environment = "staging"
      ManagedBy   = "terraform"
    }
  }
}

# The platform's Helm releases (modules/platform/addons.tf) reach the new cluster with the same
# credentials: a token from `aws eks get-token` (the AWS CLI on the machine running Terraform,
# which must be in api_allowed_cidrs).
provider "helm" {
  kubernetes {
    host                   = module.platform.cluster_endpoint
    cluster_ca_certificate = base64decode(module.platform.cluster_certificate_authority_data)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.platform.cluster_name, "--region", var.region]
    }
  }
}

module "platform" {
  source = "../../modules/platform"

  name               = "shop-api"
  environment        = "staging"
  availability_zones = var.availability_zones
  kubernetes_version = var.kubernetes_version
  node_instance_type = var.node_instance_type
  node_min_size      = var.node_min_size
  node_max_size      = var.node_max_size
  api_allowed_cidrs  = var.api_allowed_cidrs
  app_namespace      = "shop-api-staging"
  acme_email         = var.acme_email
  github_repository  = var.github_repository
  github_environment = "staging"
  # service.image (123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api) is this account's ECR repository: created by
  # prod only (one per account); every environment's nodes pull from it
  create_registry     = false
  registry_repository = "shop-api"
  registry_url        = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api"
  default_branch      = "main"
}
