"""Checks that need the terraform binary: fmt, and the per-workspace locals evaluated by terraform itself.

The evaluation runs `terraform console` on provider-free copies of the files that compute every
per-environment value (terraform/environments.tf, variables.tf; the module's locals.tf), so it needs
no network, no providers and no AWS account.
"""

from __future__ import annotations

import pytest
import yaml
from deploy_support import (
    CONFIG_MAP_NAME,
    HELM_VALUES,
    TERRAFORM_DIR,
    decode_console_json,
    helm_merge,
    load_yaml_documents,
    run,
    terraform_console,
    terraform_env,
    validate_chart_def,
    validate_chart_values,
)


def test_terraform_fmt_check_is_clean(terraform_bin):
    result = run(["terraform", "fmt", "-check", "-recursive", "-diff"], cwd=TERRAFORM_DIR, env=terraform_env())
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("env", "bucket", "namespace"),
    [("dev", "agri-fields-dev-data", "dagster-dev"), ("prod", "agri-fields-prod-data", "dagster-prod")],
)
def test_workspace_selects_the_environments_names(evaluated_env, env, bucket, namespace):
    values = evaluated_env[env]
    assert values["env"] == env
    assert values["bucket"] == bucket
    assert values["namespace"] == namespace
    assert values["config_map"] == CONFIG_MAP_NAME
    assert values["pipelines"]["geospatial-pipeline"]["image_tag"] == values["settings"]["image_tag"]
    assert values["pipelines"]["geospatial-pipeline"]["service_account"] == "geospatial-pipeline"


def test_dev_and_prod_differ_where_they_should(evaluated_env):
    dev, prod = evaluated_env["dev"]["settings"], evaluated_env["prod"]["settings"]
    assert dev["log_level"] == "DEBUG" and prod["log_level"] == "INFO"
    assert prod["max_concurrent"] > dev["max_concurrent"]
    assert prod["retention"]["rejected_days"] > dev["retention"]["rejected_days"]


@pytest.mark.parametrize("workspace", ["default", "staging"])
def test_any_other_workspace_is_refused_with_a_clear_error(root_copy, workspace):
    result = terraform_console(root_copy, "local.env", workspace)
    output = " ".join((result.stdout + result.stderr).replace("│", " ").replace('\\"', '"').split())
    # The console reports the failed local and yields no value for it (plan and apply stop there).
    assert "Error: Invalid function argument" in output, output
    assert f'Terraform workspace "{workspace}" is not an environment of this configuration' in output, output
    assert "terraform workspace select dev" in output
    assert f'"{workspace}"' not in result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_rendered_config_yaml_loads_with_the_pipelines_own_loader(evaluated_env, env, tmp_path):
    from geospatial_pipeline.settings import load_settings

    values = evaluated_env[env]
    path = tmp_path / "config.yaml"
    path.write_text(values["config_yaml"], encoding="utf-8")
    settings = load_settings(path)  # raises ConfigError on any key the model does not accept
    assert settings.s3_bucket == values["bucket"]
    assert settings.s3_prefix == values["prefix"]
    assert settings.log_level == values["settings"]["log_level"]
    assert settings.lateness_window_hours == values["settings"]["lateness_hours"]
    assert settings.s3_endpoint_url is None
    assert set(yaml.safe_load(values["config_yaml"])) <= set(type(settings).model_fields)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_helm_values_per_environment_validate_against_the_chart_schema(evaluated_env, env):
    static = load_yaml_documents(HELM_VALUES)[0]
    overlay = evaluated_env[env]["helm"]
    # What Helm receives: the shared file, then this overlay (the chart's defaults fill the rest).
    merged = helm_merge(static, overlay)
    assert validate_chart_values(merged) == []
    # The parts this deployment defines completely validate with every required key.
    assert validate_chart_def("RunLauncher", merged["runLauncher"]) == []
    assert validate_chart_def("RunCoordinator", merged["dagsterDaemon"]["runCoordinator"]) == []
    assert validate_chart_def("Workspace", merged["dagsterWebserver"]["workspace"]) == []
    queued = merged["dagsterDaemon"]["runCoordinator"]
    assert queued["type"] == "QueuedRunCoordinator"
    cap = queued["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
    assert cap == evaluated_env[env]["settings"]["max_concurrent"]
    launcher = merged["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["jobNamespace"] == evaluated_env[env]["namespace"]
    assert launcher["resources"] == evaluated_env[env]["settings"]["run_resources"]
    servers = merged["dagsterWebserver"]["workspace"]["servers"]
    assert servers == [{"host": "geospatial-pipeline", "port": 3030, "name": "geospatial-pipeline"}]


def test_external_database_per_environment_switches_off_the_bundled_one(root_copy, tmp_path):
    var_file = tmp_path / "db.tfvars"
    var_file.write_text('external_postgresql = { prod = { host = "dagster.db.internal" } }\n')
    result = terraform_console(root_copy, "jsonencode(local.dagster_env_values)", "prod", (var_file,))
    assert result.returncode == 0, result.stderr
    overlay = decode_console_json(result.stdout)
    assert overlay["postgresql"]["enabled"] is False
    assert overlay["postgresql"]["postgresqlHost"] == "dagster.db.internal"
    merged = helm_merge(load_yaml_documents(HELM_VALUES)[0], overlay)
    assert validate_chart_values(merged) == []
    dev = terraform_console(root_copy, "jsonencode(local.dagster_env_values)", "dev", (var_file,))
    assert "postgresql" not in decode_console_json(dev.stdout)


def test_runs_launched_from_a_code_location_use_its_image_and_service_account(module_copy):
    result = terraform_console(
        module_copy, "jsonencode({ctx = local.container_context, image = local.image})", "default"
    )
    assert result.returncode == 0, result.stderr
    values = decode_console_json(result.stdout)
    assert values["image"] == "registry.example/geospatial-pipeline:0.1.0"
    k8s = values["ctx"]["k8s"]
    assert k8s["service_account_name"] == "geospatial-pipeline"
    # Run pods must not carry the code server's selector labels, or its Service would route to them.
    assert k8s["labels"].get("app.kubernetes.io/component") != "code-location"


def test_module_refuses_a_latest_image_tag(module_copy, tmp_path):
    var_file = tmp_path / "latest.tfvars"
    var_file.write_text('image_tag = "latest"\n')
    result = terraform_console(module_copy, "local.image", "default", (var_file,))
    assert result.returncode != 0
    assert "image_tag must name one build" in " ".join(result.stderr.split())
