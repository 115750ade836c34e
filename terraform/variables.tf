# Inputs that are facts about the AWS account and cluster, the same for dev and prod.
# Everything that differs between environments lives in environments.tf.

variable "aws_region" {
  description = "Region of the EKS cluster and of the data bucket."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster (its OIDC provider must already be registered in IAM)."
  type        = string
}

variable "resource_prefix" {
  description = "Prefix of every AWS resource name; the data bucket is <resource_prefix>-<env>-data."
  type        = string
  default     = "agri-fields"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,22}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-24 lowercase letters, digits or hyphens (it starts S3 bucket and IAM role names)."
  }
}

variable "pipelines" {
  description = <<-EOT
    One entry per pipeline code location, keyed by its name (also the name of its Deployment,
    Service and ServiceAccount, so a DNS label of at most 30 characters). Each entry is deployed by its own instance of
    modules/code-location and can be added, removed or upgraded without changing Dagster core.
    image_tag and replicas default to the environment's values in environments.tf.
  EOT
  type = map(object({
    image_repository = string
    module_name      = optional(string, "geospatial_pipeline.definitions")
    image_tag        = optional(string)
    port             = optional(number, 3030)
    replicas         = optional(number)
  }))

  validation {
    condition     = alltrue([for name in keys(var.pipelines) : can(regex("^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$", name))])
    error_message = "Pipeline names must be DNS labels of at most 30 characters (lowercase letters, digits, hyphens)."
  }

  validation {
    condition     = length(var.pipelines) > 0
    error_message = "Declare at least one pipeline: Dagster needs one code location to serve."
  }
}

variable "dagster_chart_version" {
  description = "Version of the Dagster Helm chart (match the dagster version in poetry.lock)."
  type        = string
  default     = "1.13.27"
}

variable "dagster_chart_repository" {
  description = "Helm repository serving the dagster chart (override with an internal mirror)."
  type        = string
  default     = "https://dagster-io.github.io/helm"
}

variable "external_postgresql" {
  description = <<-EOT
    Per environment, an existing PostgreSQL database for Dagster's run and event storage, e.g.
    { prod = { host = "dagster-prod.xxxx.eu-west-1.rds.amazonaws.com" } }. Environments without an
    entry run the chart's bundled PostgreSQL. Either way the password is read from the Kubernetes
    secret dagster-postgresql-secret (key postgresql-password), created before the first apply.
  EOT
  type = map(object({
    host     = string
    username = optional(string, "dagster")
    database = optional(string, "dagster")
    port     = optional(number, 5432)
  }))
  default = {}
}

variable "access_log_bucket" {
  description = "Existing bucket that receives the data bucket's S3 server access logs."
  type        = string
}

variable "tags" {
  description = "Extra tags for every AWS resource."
  type        = map(string)
  default     = {}
}
