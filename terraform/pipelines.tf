# One code location per entry of var.pipelines, each a separate module instance: adding a
# pipeline or rolling out a new image touches only that instance (the core release changes only
# when the list of pipelines, i.e. the webserver's workspace, changes).
module "pipeline" {
  source   = "./modules/code-location"
  for_each = local.pipelines

  name             = each.key
  namespace        = kubernetes_config_map_v1.pipeline_config.metadata[0].namespace
  module_name      = each.value.module_name
  image_repository = each.value.image_repository
  image_tag        = each.value.image_tag
  port             = each.value.port
  replicas         = each.value.replicas
  resources        = each.value.resources
  iam_role_arn     = aws_iam_role.pipeline[each.key].arn
  config_map_name  = kubernetes_config_map_v1.pipeline_config.metadata[0].name
  # A new config.yaml rolls the code servers, so they never serve stale settings.
  config_checksum = sha256(local.pipeline_config_yaml)
}
