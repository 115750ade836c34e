output "workspace_server" {
  description = "Entry of the Dagster workspace that serves this code location."
  value       = { host = kubernetes_service_v1.this.metadata[0].name, port = var.port, name = var.name }
}

output "service_account_name" {
  description = "Service account (IRSA) of the code server and of its runs."
  value       = kubernetes_service_account_v1.this.metadata[0].name
}

output "image" {
  description = "Image served by this code location."
  value       = local.image
}
