output "registry_url" {
  description = "ECR repository URL (empty in the environments that do not own it)."
  value       = module.platform.registry_url
}

output "push_role_arn" {
  description = "Set it as the GitHub repository variable AWS_PUSH_ROLE_ARN (empty in the environments that do not own the registry)."
  value       = module.platform.push_role_arn
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.platform.cluster_endpoint
}

output "deploy_role_arn" {
  description = "Set it as the variable AWS_DEPLOY_ROLE_ARN of the GitHub environment production."
  value       = module.platform.deploy_role_arn
}
