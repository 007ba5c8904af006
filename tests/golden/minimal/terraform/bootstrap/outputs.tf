output "state_bucket" {
  description = "The bucket every environment's backend \"s3\" block names."
  value       = aws_s3_bucket.state.id
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state objects."
  value       = aws_kms_key.state.arn
}

output "github_oidc_provider_arn" {
  description = "The GitHub Actions OIDC provider the deploy roles trust."
  value       = aws_iam_openid_connect_provider.github.arn
}
