# One pipeline's code location: a gRPC server (`dagster api grpc`) that Dagster core's webserver
# and daemon query, its Service, and the service account (IRSA) used by the server and its runs.

resource "kubernetes_service_account_v1" "this" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
    annotations = {
      "eks.amazonaws.com/role-arn" = var.iam_role_arn
    }
  }
  # The EKS pod identity webhook projects its own web-identity token; no pod needs an API token.
  automount_service_account_token = false
}

resource "kubernetes_deployment_v1" "this" {
  # checkov:skip=CKV_K8S_43:The image is pinned by an immutable tag (the ECR repository enforces tag immutability, see terraform/README.md); promotion copies that tag from dev to prod, so a digest would add nothing.
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    replicas = var.replicas

    selector {
      match_labels = local.selector_labels
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = 0
        max_surge       = 1
      }
    }

    template {
      metadata {
        labels = local.labels
        annotations = {
          "checksum/config" = var.config_checksum
        }
      }

      spec {
        service_account_name            = kubernetes_service_account_v1.this.metadata[0].name
        automount_service_account_token = false
        enable_service_links            = false

        security_context {
          run_as_non_root = true
          run_as_user     = var.run_as_uid
          run_as_group    = var.run_as_uid
          fs_group        = var.run_as_uid
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "grpc"
          image             = local.image
          image_pull_policy = "Always"
          command           = ["dagster", "api", "grpc"]
          args              = ["-m", var.module_name, "-h", "0.0.0.0", "-p", tostring(var.port)]

          port {
            name           = "grpc"
            container_port = var.port
            protocol       = "TCP"
          }

          env {
            name  = "DAGSTER_CURRENT_IMAGE"
            value = local.image
          }
          env {
            name  = "DAGSTER_CONTAINER_CONTEXT"
            value = jsonencode(local.container_context)
          }

          resources {
            requests = {
              cpu    = var.resources.requests.cpu
              memory = var.resources.requests.memory
            }
            limits = {
              cpu    = var.resources.limits.cpu
              memory = var.resources.limits.memory
            }
          }

          security_context {
            run_as_non_root            = true
            run_as_user                = var.run_as_uid
            run_as_group               = var.run_as_uid
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
            seccomp_profile {
              type = "RuntimeDefault"
            }
          }

          # Loading the definitions (geopandas, pyproj) takes a while on a cold node.
          startup_probe {
            exec {
              command = ["dagster", "api", "grpc-health-check", "-p", tostring(var.port)]
            }
            period_seconds    = 10
            timeout_seconds   = 10
            failure_threshold = 30
          }
          readiness_probe {
            exec {
              command = ["dagster", "api", "grpc-health-check", "-p", tostring(var.port)]
            }
            period_seconds    = 20
            timeout_seconds   = 10
            failure_threshold = 3
          }
          liveness_probe {
            exec {
              command = ["dagster", "api", "grpc-health-check", "-p", tostring(var.port)]
            }
            period_seconds    = 30
            timeout_seconds   = 10
            failure_threshold = 5
          }

          volume_mount {
            name       = "pipeline-config"
            mount_path = local.config_mount_path
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "pipeline-config"
          config_map {
            name         = var.config_map_name
            default_mode = "0444"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "1Gi"
          }
        }
      }
    }
  }
}

resource "kubernetes_service_v1" "this" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    type     = "ClusterIP"
    selector = local.selector_labels

    port {
      name        = "grpc"
      port        = var.port
      target_port = "grpc"
      protocol    = "TCP"
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "this" {
  count = var.replicas > 1 ? 1 : 0

  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    min_available = 1
    selector {
      match_labels = local.selector_labels
    }
  }
}
