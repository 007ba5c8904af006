output "state_bucket" {
  description = "The bucket every environment's backend \"s3\" block names."
  value       = aws_s3_bucket.state.id
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state objects."
  value       = aws_kms_key.state.arn
}
