"""The small core every family shares: the Family type, the verify session, the tool runners
(tool versions, checkov) and the built Kubernetes objects."""
