output "registry_url" {
  description = "ECR repository URL (set service.image to it to push there); empty when create_registry is false."
  value       = var.create_registry ? aws_ecr_repository.service[0].repository_url : ""
}

output "push_role_arn" {
  description = "Role the ci.yml publish job assumes to push (the GitHub repository variable AWS_PUSH_ROLE_ARN); empty where create_registry is false."
  value       = var.create_registry ? aws_iam_role.push[0].arn : ""
}

output "cluster_name" {
  description = "EKS cluster name (the deploy workflow's CLUSTER)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the Kubernetes API (the helm provider's cluster_ca_certificate)."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_oidc_issuer_url" {
  description = "OIDC issuer of the cluster, for workload identity (IRSA)."
  value       = module.eks.cluster_oidc_issuer_url
}

output "vpc_id" {
  description = "VPC the cluster runs in."
  value       = module.vpc.vpc_id
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes (the GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}
