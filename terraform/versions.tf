terraform {
  # 1.10+: S3 backend locking with use_lockfile (no DynamoDB table).
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
  }

  # State lives in an existing bucket. Partial configuration: bucket, key, region (and
  # use_lockfile = true) are passed with -backend-config at `terraform init`; see README.md.
  # Each workspace's state is stored under env:/<workspace>/<key>.
  backend "s3" {}
}
