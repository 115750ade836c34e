# IAM roles for service accounts (IRSA): one role per pipeline, assumable only by that
# pipeline's Kubernetes service account in this environment's namespace, through the existing
# cluster's OIDC provider. Pods get temporary credentials from the default AWS credential chain;
# no access key exists anywhere.

data "aws_iam_openid_connect_provider" "cluster" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

locals {
  # The issuer without its scheme is the prefix of the token's claim keys.
  oidc_issuer = trimprefix(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")

  # Object keys the pipeline may touch: its prefix and nothing else in the bucket.
  lake_objects_arn = "${aws_s3_bucket.data.arn}/${local.key_prefix}*"
}

data "aws_iam_policy_document" "pipeline_trust" {
  for_each = local.pipelines

  statement {
    sid     = "PipelineServiceAccountOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [data.aws_iam_openid_connect_provider.cluster.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${local.namespace}:${each.value.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "pipeline_lake" {
  statement {
    sid       = "ListOwnPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.key_prefix, "${local.key_prefix}*"]
    }
  }

  statement {
    sid       = "ReadWriteOwnPrefix"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.lake_objects_arn]
  }

  statement {
    sid       = "UseLakeKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "pipeline" {
  for_each = local.pipelines

  name                 = "${var.resource_prefix}-${local.env}-${each.key}"
  description          = "IRSA role of the ${each.key} pipeline in ${local.namespace}"
  assume_role_policy   = data.aws_iam_policy_document.pipeline_trust[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "pipeline_lake" {
  for_each = local.pipelines

  name   = "lake-${local.env}"
  role   = aws_iam_role.pipeline[each.key].id
  policy = data.aws_iam_policy_document.pipeline_lake.json
}
