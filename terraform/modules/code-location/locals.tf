# Provider-free values of the module (tests/deploy evaluates them with `terraform console`).
locals {
  image = "${var.image_repository}:${var.image_tag}"

  labels = {
    "app.kubernetes.io/name"       = var.name
    "app.kubernetes.io/component"  = "code-location"
    "app.kubernetes.io/part-of"    = "geospatial-pipeline"
    "app.kubernetes.io/version"    = var.image_tag
    "app.kubernetes.io/managed-by" = "terraform"
  }
  selector_labels = {
    "app.kubernetes.io/name"      = var.name
    "app.kubernetes.io/component" = "code-location"
  }

  config_mount_path = "/etc/dagster/config"

  # What the K8sRunLauncher merges into every run launched from this code location (the mechanism
  # behind the user-deployments chart's includeConfigInLaunchedRuns): runs execute in this image,
  # as this pipeline's service account, so IRSA gives them the same S3 access as the code server.
  # The config.yaml volume and the run pods' security context come from the core's
  # runLauncher values, shared by all code locations.
  container_context = {
    k8s = {
      service_account_name = var.name
      image_pull_policy    = "Always"
      # Not the code server's selector labels: its Service must never select run pods.
      labels = {
        "app.kubernetes.io/part-of"   = "geospatial-pipeline"
        "app.kubernetes.io/component" = "run"
        "dagster/code-location"       = var.name
      }
    }
  }
}
