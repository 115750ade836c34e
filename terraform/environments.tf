# Everything that differs between dev and prod, in one place.
#
# The environment is the Terraform workspace: `terraform workspace select dev|prod`. No other
# workspace is accepted (including `default`), so a plan can never run against an unnamed
# environment. This file holds only locals computed from variables and the workspace, with no
# provider, resource or data source, so tests/deploy evaluates it with `terraform console`
# on a provider-free copy.

locals {
  environments = {
    dev = {
      namespace         = "dagster-dev"
      image_tag         = "0.1.0"
      s3_prefix         = "geospatial"
      partition_start   = "2025-01-01"
      log_level         = "DEBUG"
      lateness_hours    = 24
      max_concurrent    = 4
      webserver_replica = 1
      code_server = {
        replicas  = 1
        resources = { requests = { cpu = "250m", memory = "512Mi" }, limits = { cpu = "1", memory = "1Gi" } }
      }
      run_resources = { requests = { cpu = "500m", memory = "1Gi" }, limits = { cpu = "1", memory = "2Gi" } }
      # Days before lifecycle rules act on the lake (see s3.tf).
      retention = {
        rejected_days       = 30
        late_data_days      = 90
        raw_infrequent_days = 30
        noncurrent_days     = 7
        incomplete_mpu_days = 1
        raw_glacier_ir_days = 0 # 0 = never
      }
    }
    prod = {
      namespace         = "dagster-prod"
      image_tag         = "0.1.0"
      s3_prefix         = "geospatial"
      partition_start   = "2025-01-01"
      log_level         = "INFO"
      lateness_hours    = 48
      max_concurrent    = 16
      webserver_replica = 2
      code_server = {
        replicas  = 2
        resources = { requests = { cpu = "500m", memory = "1Gi" }, limits = { cpu = "1", memory = "2Gi" } }
      }
      run_resources = { requests = { cpu = "1", memory = "4Gi" }, limits = { cpu = "2", memory = "8Gi" } }
      retention = {
        rejected_days       = 180
        late_data_days      = 400
        raw_infrequent_days = 30
        noncurrent_days     = 30
        incomplete_mpu_days = 7
        raw_glacier_ir_days = 180
      }
    }
  }

  # Terraform has no raise(): converting this sentence to a number fails, and the error shows it.
  env = contains(keys(local.environments), terraform.workspace) ? terraform.workspace : tonumber(
    "Terraform workspace \"${terraform.workspace}\" is not an environment of this configuration: run `terraform workspace select dev` (or prod). Allowed: ${join(", ", keys(local.environments))}."
  )
  settings = local.environments[local.env]

  namespace       = local.settings.namespace
  bucket_name     = "${var.resource_prefix}-${local.env}-data"
  s3_prefix       = local.settings.s3_prefix
  key_prefix      = local.s3_prefix == "" ? "" : "${local.s3_prefix}/"
  config_map_name = "geospatial-pipeline-config"

  # config.yaml of the pipeline: every key is a field of geospatial_pipeline.settings.PipelineSettings
  # (extra keys make the pipeline refuse to start; tests/deploy loads this with the pipeline's loader).
  pipeline_config = {
    s3_bucket              = local.bucket_name
    s3_prefix              = local.s3_prefix
    s3_region              = var.aws_region
    s3_retry_mode          = "adaptive"
    s3_max_attempts        = 10
    log_level              = local.settings.log_level
    partition_start_date   = local.settings.partition_start
    lateness_window_hours  = local.settings.lateness_hours
    max_clock_skew_minutes = 10
    target_crs             = "EPSG:4326"
    allowed_geometry_types = ["Polygon", "MultiPolygon"]
    repair_invalid         = false
    max_rejected_ratio     = 0.05
    late_write_concurrency = 16
  }
  pipeline_config_yaml = yamlencode(local.pipeline_config)

  # Every code location this workspace deploys, with the per-environment defaults filled in.
  pipelines = {
    for name, p in var.pipelines : name => {
      module_name      = p.module_name
      image_repository = p.image_repository
      image_tag        = coalesce(p.image_tag, local.settings.image_tag)
      port             = p.port
      replicas         = coalesce(p.replicas, local.settings.code_server.replicas)
      resources        = local.settings.code_server.resources
      service_account  = name
    }
  }

  # Dagster's own database: an existing one when var.external_postgresql names one for this
  # environment, otherwise the chart's bundled PostgreSQL (see k8s/helm/dagster-core.values.yaml).
  external_postgresql = lookup(var.external_postgresql, local.env, null)
  postgresql_values = local.external_postgresql == null ? {} : {
    postgresql = {
      enabled            = false
      postgresqlHost     = local.external_postgresql.host
      postgresqlUsername = local.external_postgresql.username
      postgresqlDatabase = local.external_postgresql.database
      service            = { port = local.external_postgresql.port }
    }
  }

  # The per-environment part of the Dagster core Helm values, passed after
  # k8s/helm/dagster-core.values.yaml (Helm merges maps key by key and replaces lists).
  dagster_env_values = merge(local.postgresql_values, {
    dagsterWebserver = {
      replicaCount = local.settings.webserver_replica
      workspace = {
        enabled = true
        servers = [for name, p in local.pipelines : { host = name, port = p.port, name = name }]
      }
    }
    dagsterDaemon = {
      runCoordinator = {
        config = {
          queuedRunCoordinator = {
            maxConcurrentRuns = local.settings.max_concurrent
          }
        }
      }
    }
    runLauncher = {
      config = {
        k8sRunLauncher = {
          jobNamespace = local.namespace
          resources    = local.settings.run_resources
        }
      }
    }
    pythonLogs = {
      pythonLogLevel = local.settings.log_level
    }
  })
}
