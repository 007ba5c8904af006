# What shop-api's Kubernetes manifests assume of the cluster, installed here so that nothing
# they need is left undeclared (kit's rule iac.rule.prerequisites checks it against k8s/):
# - the ingress controller serving the IngressClass nginx, in the namespace ingress-nginx
#   (the NetworkPolicy admits traffic from there);
# - cert-manager and the ClusterIssuer letsencrypt-prod (charts/platform-config);
# - the External Secrets Operator with its cloud identity and the ClusterSecretStore platform-secrets;
# - the CI deploy identity's access: its app namespace only (charts/platform-config).
# - the Cluster Autoscaler, which scales the EKS node group between its bounds;
# NetworkPolicy enforcement and the metrics API for the HPA come with the cluster (main.tf).
# Charts are pinned to exact versions; the helm provider reaches the cluster through the
# environment's provider configuration (environments/<env>/main.tf).

resource "helm_release" "ingress_nginx" {
  name             = "ingress-nginx"
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = "4.12.1"
  namespace        = "ingress-nginx"
  create_namespace = true

  set {
    name  = "controller.ingressClassResource.name"
    value = "nginx"
  }
  set {
    name  = "controller.ingressClass"
    value = "nginx"
  }
  set {
    name  = "controller.service.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type"
    value = "nlb"
  }

  depends_on = [module.eks]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = "v1.17.2"
  namespace        = "cert-manager"
  create_namespace = true

  set {
    name  = "crds.enabled"
    value = "true"
  }

  depends_on = [module.eks]
}

# The Cluster Autoscaler moves the EKS node group between its min_size and max_size when pods
# cannot be scheduled or nodes sit idle (GKE and AKS scale their pools themselves). Its minor
# matches the cluster's Kubernetes 1.33 (chart 9.51.0, app
# 1.33.0); it discovers the node group by the tags
# k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster> (main.tf) and acts
# through its own IAM role (module.cluster_autoscaler_irsa).
resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = "9.51.0"
  namespace  = "kube-system"

  set {
    name  = "cloudProvider"
    value = "aws"
  }
  set {
    name  = "awsRegion"
    value = data.aws_region.current.name
  }
  set {
    name  = "autoDiscovery.clusterName"
    value = module.eks.cluster_name
  }
  set {
    name  = "rbac.serviceAccount.name"
    value = "cluster-autoscaler"
  }
  set {
    name  = "rbac.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn"
    value = module.cluster_autoscaler_irsa.iam_role_arn
  }

  lifecycle {
    precondition {
      condition     = var.kubernetes_version == "1.33"
      error_message = "cluster-autoscaler 1.33.0 is the release for Kubernetes 1.33: regenerate with kit (cloud.kubernetes_version) to change the cluster's version."
    }
  }

  depends_on = [module.eks]
}

resource "helm_release" "external_secrets" {
  name             = "external-secrets"
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = "0.17.0"
  namespace        = "external-secrets"
  create_namespace = true

  set {
    name  = "installCRDs"
    value = "true"
  }
  set {
    name  = "serviceAccount.name"
    value = "external-secrets"
  }
  set {
    name  = "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn"
    value = module.external_secrets_irsa.iam_role_arn
  }

  depends_on = [module.eks]
}

resource "helm_release" "platform_config" {
  name      = "platform-config"
  chart     = "${path.module}/charts/platform-config"
  namespace = "kube-system"

  # the CI deploy identity: admin in the app namespace only (templates/deploy-access.yaml)
  set {
    name  = "deploy.namespace"
    value = var.app_namespace
  }
  set {
    name  = "deploy.subject.kind"
    value = local.deploy_subject.kind
  }
  set {
    name  = "deploy.subject.name"
    value = local.deploy_subject.name
  }

  set {
    name  = "acme.email"
    value = var.acme_email
  }
  set {
    name  = "secretStore.region"
    value = data.aws_region.current.name
  }

  depends_on = [helm_release.cert_manager, helm_release.external_secrets]
}
