# The namespace and its guardrails (Pod Security labels, quota, limit range, network policies)
# come from k8s/overlays/<env> (kubectl apply -k): Terraform only checks that it exists.
data "kubernetes_namespace_v1" "dagster" {
  metadata {
    name = local.namespace
  }
}

# The pipeline's config.yaml, mounted read-only at /etc/dagster/config in every code server and
# every run pod. Its keys are exactly the fields of geospatial_pipeline.settings.PipelineSettings.
resource "kubernetes_config_map_v1" "pipeline_config" {
  metadata {
    name      = local.config_map_name
    namespace = data.kubernetes_namespace_v1.dagster.metadata[0].name
    labels = {
      "app.kubernetes.io/part-of"    = "geospatial-pipeline"
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }

  data = {
    "config.yaml" = local.pipeline_config_yaml
  }
}
