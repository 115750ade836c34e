# The lake: one bucket per environment, <resource_prefix>-<env>-data, objects under <s3_prefix>/.
#
# Layout written by the pipeline (see geospatial_pipeline/lake):
#   raw/{date}/                          input batches
#   fields/date={date}/fields.parquet    published GeoParquet
#   late_data/{date}/..., late_data/_batches/{date}/...
#   rejected/{date}/rejected.geojsonl    quarantine
#   manifests/{date}.json

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_kms_key" "data" {
  description             = "Encrypts the ${local.env} geospatial lake bucket ${local.bucket_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The account administers the key through IAM; the pipeline roles get use of it in iam.tf.
        Sid       = "AccountAdministersKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.bucket_name}"
  target_key_id = aws_kms_key.data.key_id
}

resource "aws_s3_bucket" "data" {
  # checkov:skip=CKV_AWS_144:Single-region lake by design: everything published is rebuilt from raw/ (versioned, lifecycle-protected); cross-region copies are an organisation-level DR decision, not this pipeline's.
  # checkov:skip=CKV2_AWS_62:Nothing consumes S3 events: the pipeline runs per daily partition on Dagster schedules and sensors that list the prefix.
  bucket = local.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "data" {
  bucket        = aws_s3_bucket.data.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${local.bucket_name}/"
}

# Only TLS (1.2 or newer) reaches the bucket, whoever asks.
resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOutdatedTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  })

  # The public access block must exist first, or a policy with Principal "*" may be evaluated as public.
  depends_on = [aws_s3_bucket_public_access_block.data]
}

# Lifecycle suited to the lake's prefixes. Published fields and manifests are kept; their
# overwritten versions (re-runs after late data) expire after noncurrent_days.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "whole-bucket-hygiene"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = local.settings.retention.incomplete_mpu_days
    }
    noncurrent_version_expiration {
      noncurrent_days = local.settings.retention.noncurrent_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  # Raw batches are read once by their partition and again only for backfills.
  rule {
    id     = "raw-tiering"
    status = "Enabled"
    filter {
      prefix = "${local.key_prefix}raw/"
    }
    transition {
      days          = local.settings.retention.raw_infrequent_days
      storage_class = "STANDARD_IA"
    }
    dynamic "transition" {
      for_each = local.settings.retention.raw_glacier_ir_days > 0 ? [1] : []
      content {
        days          = local.settings.retention.raw_glacier_ir_days
        storage_class = "GLACIER_IR"
      }
    }
  }

  # Quarantined records are kept long enough to be investigated, then dropped.
  rule {
    id     = "rejected-expiry"
    status = "Enabled"
    filter {
      prefix = "${local.key_prefix}rejected/"
    }
    expiration {
      days = local.settings.retention.rejected_days
    }
  }

  # Late arrivals (per-record files and their batches) outlive the lateness window by far; they
  # expire once no reprocessing of their partition can need them.
  rule {
    id     = "late-data-expiry"
    status = "Enabled"
    filter {
      prefix = "${local.key_prefix}late_data/"
    }
    expiration {
      days = local.settings.retention.late_data_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}
