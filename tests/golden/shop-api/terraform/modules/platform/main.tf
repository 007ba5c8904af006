# The platform of one environment: a container registry (ECR, created by one environment
# only), a VPC, an EKS cluster with a managed node group (scaled by the cluster-autoscaler,
# addons.tf) and the EBS CSI driver (the StatefulSets' volumes), and the role GitHub Actions assumes through OIDC to deploy. Credentials come from the environment (AWS_PROFILE, SSO, or the CI
# role assumed through OIDC); nothing here holds a secret.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  cluster_name   = "${var.name}-${var.environment}"
  deploy_group   = "${var.name}-deployers"
  deploy_subject = { kind = "Group", name = local.deploy_group }
  azs            = var.availability_zones
  tags = merge(var.tags, {
    Service     = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

# The repository service.image names: CI pushes there, every environment's nodes pull from it
# (the EKS module's node role carries AmazonEC2ContainerRegistryReadOnly).
resource "aws_ecr_repository" "service" {
  count                = var.create_registry ? 1 : 0
  name                 = var.registry_repository
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.registry_url == "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com/${var.registry_repository}"
      error_message = "service.image (registry_url) names another account or region than the one Terraform runs in."
    }
  }
}

# The backup image (backup/postgres/Dockerfile: PostgreSQL with pgBackRest) that the database, the
# backup CronJob and the restore Pod run; CI pushes it once per version (its tag names its contents).
resource "aws_ecr_repository" "backup" {
  count                = var.create_registry ? 1 : 0
  name                 = "shop-api-pgbackrest"
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

  # The deploy jobs run on self-hosted runners in the private subnets (GitHub-hosted runners have
  # no fixed address to list in api_allowed_cidrs): from inside the VPC the API is the private
  # endpoint, which admits what the cluster security group admits.
  cluster_security_group_additional_rules = {
    deploy_runners = {
      description = "Kubernetes API from self-hosted CI runners in the private subnets"
      protocol    = "tcp"
      from_port   = 443
      to_port     = 443
      type        = "ingress"
      cidr_blocks = module.vpc.private_subnets_cidr_blocks
    }
  }

  enable_cluster_creator_admin_permissions = true

  # The CI deploy role acts in this environment's namespace only: the access entry maps it to a
  # Kubernetes group, and charts/platform-config binds that group to `admin` in var.app_namespace
  # (no EKS access policy, nothing cluster-wide; kit's rule iac.rule.deploy_scope).
  access_entries = {
    github_deploy = {
      principal_arn     = aws_iam_role.deploy.arn
      kubernetes_groups = [local.deploy_group]
    }
  }

  cluster_addons = {
    # The VPC CNI accepts NetworkPolicies but enforces none unless enableNetworkPolicy is set
    # (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html); set
    # before the nodes join, so every node starts enforcing.
    vpc-cni = {
      most_recent          = true
      before_compute       = true
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    # The HPA reads CPU from the metrics API, and EKS runs no metrics-server by default
    # (https://docs.aws.amazon.com/eks/latest/userguide/metrics-server.html): the community add-on.
    metrics-server = {
      most_recent = true
    }
    # PersistentVolumeClaims need a CSI driver; the add-on also creates a gp3 default StorageClass.
    aws-ebs-csi-driver = {
      most_recent              = true
      service_account_role_arn = module.ebs_csi_irsa.iam_role_arn
      configuration_values     = jsonencode({ defaultStorageClass = { enabled = true } })
    }
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = [var.node_instance_type]
      min_size       = var.node_min_size
      max_size       = max(var.node_min_size, var.node_max_size)
      desired_size   = var.node_min_size
      # The cluster-autoscaler (addons.tf) finds the group by these tags (its
      # --node-group-auto-discovery=asg:tag=...), and its IAM policy acts only on groups carrying
      # them. These tags sit on the EKS node group; EKS itself tags a managed node group's Auto
      # Scaling group with the same two keys (EKS managed node group docs), since node group tags
      # are not copied to the Auto Scaling group.
      tags = {
        "k8s.io/cluster-autoscaler/enabled"               = "true"
        "k8s.io/cluster-autoscaler/${local.cluster_name}" = "owned"
      }
    }
  }

  tags = local.tags
}

module "ebs_csi_irsa" {
  # checkov:skip=CKV_TF_1:a registry module pinned to an exact release (the issue's "community modules pinned by version"); mirror it to pin a commit
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.44.0"

  role_name             = "${local.cluster_name}-ebs-csi"
  attach_ebs_csi_policy = true

  oidc_providers = {
    cluster = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"]
    }
  }

  tags = local.tags
}

# The cluster-autoscaler (addons.tf) moves the node group between min_size and max_size: nothing
# else does on EKS. Least privilege after the Cluster Autoscaler's AWS docs
# (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, "IAM Policy"): it may
# read every Auto Scaling group and the EC2 instance types, and change the size of, or terminate
# instances in, only the groups tagged for this cluster.
resource "aws_iam_policy" "cluster_autoscaler" {
  name        = "${local.cluster_name}-cluster-autoscaler"
  description = "cluster-autoscaler of ${local.cluster_name}: scales only this cluster's tagged node groups"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "ScaleOnlyThisClustersGroups"
        Effect = "Allow"
        Action = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
        # Auto Scaling group ARNs carry an id unknown until EKS creates the group: this account's
        # and region's groups, and of those only the ones tagged for this cluster (the docs'
        # recommended tag-based restriction).
        Resource = "arn:aws:autoscaling:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/*"
        Condition = {
          StringEquals = {
            "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled"               = "true"
            "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.cluster_name}" = "owned"
          }
        }
      },
      {
        Sid    = "DescribeGroupsAndInstanceTypes"
        Effect = "Allow"
        Action = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
          "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
          "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements"]
        # these calls support no resource-level permissions
        Resource = "*"
      },
      {
        Sid      = "DescribeThisClustersNodeGroups"
        Effect   = "Allow"
        Action   = ["eks:DescribeNodegroup"]
        Resource = "arn:aws:eks:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:nodegroup/${local.cluster_name}/*/*"
      },
    ]
  })
  tags = local.tags
}

module "cluster_autoscaler_irsa" {
  # checkov:skip=CKV_TF_1:a registry module pinned to an exact release (the issue's "community modules pinned by version"); mirror it to pin a commit
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.44.0"

  role_name        = "${local.cluster_name}-cluster-autoscaler"
  role_policy_arns = { cluster_autoscaler = aws_iam_policy.cluster_autoscaler.arn }

  oidc_providers = {
    cluster = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:cluster-autoscaler"]
    }
  }

  tags = local.tags
}

# The External Secrets Operator reads Secrets Manager as its own service account
# (external-secrets/external-secrets, addons.tf), through IRSA: only secrets under <name>/ of this
# account and region, and the KMS keys of this account that decrypt them.
module "external_secrets_irsa" {
  # checkov:skip=CKV_TF_1:a registry module pinned to an exact release (the issue's "community modules pinned by version"); mirror it to pin a commit
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.44.0"

  role_name                             = "${local.cluster_name}-external-secrets"
  attach_external_secrets_policy        = true
  external_secrets_secrets_manager_arns = ["arn:aws:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret:${var.name}/*"]
  external_secrets_ssm_parameter_arns   = ["arn:aws:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${var.name}/*"]
  external_secrets_kms_key_arns         = ["arn:aws:kms:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:key/*"]

  oidc_providers = {
    cluster = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["external-secrets:external-secrets"]
    }
  }

  tags = local.tags
}

# GitHub Actions deploys with this role: the account's GitHub OIDC provider (bootstrap creates
# it) may hand it out only to jobs of this repository running in this environment's GitHub
# environment, whose protection rules gate them.
data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

resource "aws_iam_role" "deploy" {
  name        = "${local.cluster_name}-github-deploy"
  description = "GitHub Actions deploys ${var.github_repository} to ${local.cluster_name}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = data.aws_iam_openid_connect_provider.github.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
          "token.actions.githubusercontent.com:sub" = "repo:${var.github_repository}:environment:${var.github_environment}"
        }
      }
    }]
  })
  tags = local.tags
}

locals {
  registry_arn = "arn:aws:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/${var.registry_repository}"
}

# The deploy role reads the cluster, and the image's signature in the registry (cosign verify).
resource "aws_iam_role_policy" "deploy" {
  name = "describe-cluster-read-registry"
  role = aws_iam_role.deploy.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["eks:DescribeCluster"]
        Resource = module.eks.cluster_arn
      },
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*"
      },
      {
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
        Resource = local.registry_arn
      },
    ]
  })
}

# CI pushes and signs images with this role: only this repository's runs on the default branch
# and v* tags (the ci.yml publish job; GitHub repository variable AWS_PUSH_ROLE_ARN). Created with
# the repository, in one environment.
resource "aws_iam_role" "push" {
  count       = var.create_registry ? 1 : 0
  name        = "${var.name}-github-push"
  description = "GitHub Actions pushes ${var.github_repository} images to ${var.registry_repository}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = data.aws_iam_openid_connect_provider.github.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = { "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com" }
        StringLike = {
          "token.actions.githubusercontent.com:sub" = [
            "repo:${var.github_repository}:ref:refs/heads/${var.default_branch}",
            "repo:${var.github_repository}:ref:refs/tags/v*",
          ]
        }
      }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "push" {
  count = var.create_registry ? 1 : 0
  name  = "push-images"
  role  = aws_iam_role.push[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*"
      },
      {
        Effect = "Allow"
        Action = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
        "ecr:DescribeImages"]
        Resource = [aws_ecr_repository.service[0].arn, aws_ecr_repository.backup[0].arn]
      },
    ]
  })
}
