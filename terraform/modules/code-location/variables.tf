variable "name" {
  description = "Name of the code location: its Deployment, Service, ServiceAccount and workspace entry."
  type        = string
}

variable "namespace" {
  description = "Namespace shared with Dagster core (the run launcher starts runs here)."
  type        = string
}

variable "module_name" {
  description = "Python module holding the Definitions, served with `dagster api grpc -m`."
  type        = string
  default     = "geospatial_pipeline.definitions"
}

variable "image_repository" {
  description = "Image repository of the pipeline (built from the repository's Dockerfile)."
  type        = string
}

variable "image_tag" {
  description = "Immutable image tag (a release or commit); never latest."
  type        = string

  validation {
    condition     = var.image_tag != "latest" && length(var.image_tag) > 0
    error_message = "image_tag must name one build: not empty, not latest."
  }
}

variable "port" {
  description = "Port of the gRPC server."
  type        = number
  default     = 3030
}

variable "replicas" {
  description = "Code server replicas (runs are separate Jobs and do not scale with this)."
  type        = number
  default     = 1
}

variable "resources" {
  description = "Requests and limits of the code server container."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
}

variable "iam_role_arn" {
  description = "IRSA role assumed by the code server and by the runs it launches."
  type        = string
}

variable "config_map_name" {
  description = "ConfigMap holding config.yaml, mounted at /etc/dagster/config."
  type        = string
}

variable "config_checksum" {
  description = "Hash of config.yaml; a change rolls the code servers."
  type        = string
  default     = ""
}

variable "run_as_uid" {
  description = "Non-root UID (and GID) of the image's user, see the Dockerfile."
  type        = number
  default     = 10001
}
