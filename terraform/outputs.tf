output "environment" {
  description = "The environment (Terraform workspace) this state describes."
  value       = local.env
}

output "namespace" {
  description = "Kubernetes namespace of Dagster core and the pipelines."
  value       = local.namespace
}

output "data_bucket" {
  description = "The lake bucket and the prefix the pipeline writes under."
  value       = { name = aws_s3_bucket.data.id, prefix = local.s3_prefix }
}

output "pipeline_role_arns" {
  description = "IRSA role of each pipeline's service account."
  value       = { for name, role in aws_iam_role.pipeline : name => role.arn }
}

output "webserver_port_forward" {
  description = "Command that opens the Dagster UI on http://localhost:8080."
  value       = "kubectl -n ${local.namespace} port-forward svc/dagster-dagster-webserver 8080:80"
}
