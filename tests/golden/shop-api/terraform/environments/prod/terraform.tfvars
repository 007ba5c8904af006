# prod values that kit cannot know. 203.0.113.0/24 is a documentation range:
# replace it with your operators' addresses (whoever runs Terraform and kubectl by hand). The
# deploy jobs do not need to be listed: they run on self-hosted runners in the VPC's private
# subnets (labels self-hosted, linux, shop-api-prod), which reach the private endpoint.
# GitHub-hosted runners have no fixed address and cannot be listed here.
api_allowed_cidrs = ["203.0.113.0/24"]

# contact address of the ACME account the ClusterIssuer registers (optional)
# acme_email = "platform@example.com"
