# Dagster core: webserver, daemon (QueuedRunCoordinator capping concurrent runs), K8sRunLauncher
# (one Kubernetes Job per run) and its database. The code locations are not part of this release
# (dagster-user-deployments.enableSubchart = false): each is deployed by module.pipeline, and
# the webserver's workspace lists their gRPC servers.
#
# Values: k8s/helm/dagster-core.values.yaml for what every environment shares, then the
# per-environment part rendered from environments.tf. Both are checked against the chart's own
# schema by tests/deploy.
resource "helm_release" "dagster" {
  name       = "dagster"
  namespace  = data.kubernetes_namespace_v1.dagster.metadata[0].name
  repository = var.dagster_chart_repository
  chart      = "dagster"
  version    = var.dagster_chart_version

  values = [
    file("${path.module}/../k8s/helm/dagster-core.values.yaml"),
    yamlencode(local.dagster_env_values),
  ]

  atomic          = true
  cleanup_on_fail = true
  wait            = true
  timeout         = 900

  # Run pods mount this ConfigMap (runLauncher volumes): it must exist before the first run.
  depends_on = [kubernetes_config_map_v1.pipeline_config]
}
