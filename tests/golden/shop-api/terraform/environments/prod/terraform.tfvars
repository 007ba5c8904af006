# prod values that kit cannot know. 203.0.113.0/24 is a documentation range:
# replace it with your operators' and CI runners' addresses before applying (GitHub-hosted
# runners have no stable addresses: use self-hosted runners in the VPC, or larger runners with
# static IPs, and list their egress here).
api_allowed_cidrs = ["203.0.113.0/24"]

# contact address of the ACME account the ClusterIssuer registers (optional)
# acme_email = "platform@example.com"
