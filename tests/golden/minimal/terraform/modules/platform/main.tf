# The platform of one environment: a container registry (ECR), a VPC, and an EKS cluster with
# a managed node group. Credentials come from the environment (AWS_PROFILE, SSO, or the CI
# role assumed through OIDC); nothing here holds a secret.

locals {
  cluster_name = "${var.name}-${var.environment}"
  azs          = var.availability_zones
  tags = merge(var.tags, {
    Service     = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

resource "aws_ecr_repository" "service" {
  count                = var.create_registry ? 1 : 0
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "service" {
  count      = var.create_registry ? 1 : 0
  repository = aws_ecr_repository.service[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the newest 100 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 100
      }
      action = { type = "expire" }
    }]
  })
}

module "vpc" {
  # checkov:skip=CKV_TF_1:a registry module pinned to an exact release (the issue's "community modules pinned by version"); mirror it to pin a commit
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.17.0"

  name            = local.cluster_name
  cidr            = var.vpc_cidr
  azs             = local.azs
  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway   = true
  single_nat_gateway   = var.environment != "prod"
  enable_dns_hostnames = true

  enable_flow_log                      = true
  create_flow_log_cloudwatch_log_group = true
  create_flow_log_cloudwatch_iam_role  = true

  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }

  tags = local.tags
}

module "eks" {
  # checkov:skip=CKV_TF_1:a registry module pinned to an exact release (the issue's "community modules pinned by version"); mirror it to pin a commit
  source  = "terraform-aws-modules/eks/aws"
  version = "20.31.6"

  cluster_name    = local.cluster_name
  cluster_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = true
  cluster_endpoint_public_access_cidrs = var.api_allowed_cidrs
  cluster_enabled_log_types            = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  enable_cluster_creator_admin_permissions = true

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = [var.node_instance_type]
      min_size       = var.node_min_size
      max_size       = max(var.node_min_size, var.node_max_size)
      desired_size   = var.node_min_size
    }
  }

  tags = local.tags
}
