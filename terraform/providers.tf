provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      project     = "geospatial-pipeline"
      environment = local.env
      managed-by  = "terraform"
    })
  }
}

# The cluster exists already; Terraform only looks it up.
data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

# Short-lived tokens from the caller's AWS identity (`aws eks get-token`): no kubeconfig, no
# static credentials.
provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.aws_region]
  }
}

provider "helm" {
  kubernetes = {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.aws_region]
    }
  }
}
