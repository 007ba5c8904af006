# prod: the shared platform module with this environment's values. Credentials come
# from the environment running Terraform (AWS_PROFILE, SSO, or an OIDC-assumed role in CI).

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Service     = "mini"
      Environment = "prod"
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

  name               = "mini"
  environment        = "prod"
  availability_zones = var.availability_zones
  kubernetes_version = var.kubernetes_version
  node_instance_type = var.node_instance_type
  node_min_size      = var.node_min_size
  node_max_size      = var.node_max_size
  api_allowed_cidrs  = var.api_allowed_cidrs
  app_namespace      = "mini-prod"
  acme_email         = var.acme_email
  github_repository  = var.github_repository
  github_environment = "production"
  # service.image (registry.example.com/mini) is not an ECR repository of eu-west-1: no registry here
  # (kit's rule cicd.rule.registry says what the cluster then lacks)
  create_registry     = false
  registry_repository = "mini"
  registry_url        = "registry.example.com/mini"
  default_branch      = "main"
}
