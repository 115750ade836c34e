"""Fixtures of the deployment checks: provider-free Terraform copies evaluated with `terraform console`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

# Test modules here import deploy_support from this folder; the conftest is imported before them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_support import (  # noqa: E402
    ENVIRONMENTS,
    MODULE_DIR,
    TERRAFORM_DIR,
    decode_console_json,
    run,
    system_tool,
    terraform_console,
    terraform_env,
)

# The root module's provider-free files: every per-environment value is computed there.
ROOT_PROVIDER_FREE = ("variables.tf", "environments.tf")
MODULE_PROVIDER_FREE = ("variables.tf", "locals.tf")

ROOT_BUNDLE = """jsonencode({
  env = local.env, bucket = local.bucket_name, namespace = local.namespace, prefix = local.s3_prefix,
  config_map = local.config_map_name, config_yaml = local.pipeline_config_yaml,
  helm = local.dagster_env_values, settings = local.settings, pipelines = local.pipelines
})"""


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    return system_tool("terraform", "the Terraform CLI checks (fmt, console) need it")


def _provider_free_copy(tmp: Path, source: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        shutil.copy(source / name, tmp / name)
    result = run(["terraform", "init", "-input=false", "-backend=false"], cwd=tmp, env=terraform_env())
    assert result.returncode == 0, f"terraform init of a provider-free copy failed:\n{result.stderr}"
    return tmp


@pytest.fixture(scope="session")
def root_copy(tmp_path_factory, terraform_bin) -> Path:
    """variables.tf + environments.tf with the example tfvars, initialised without providers."""
    tmp = tmp_path_factory.mktemp("terraform-root")
    shutil.copy(TERRAFORM_DIR / "terraform.tfvars.example", tmp / "terraform.tfvars")
    return _provider_free_copy(tmp, TERRAFORM_DIR, ROOT_PROVIDER_FREE)


@pytest.fixture(scope="session")
def evaluated_env(root_copy) -> dict[str, dict[str, Any]]:
    """The root module's locals, evaluated by terraform in each environment's workspace."""
    out = {}
    for env in ENVIRONMENTS:
        result = terraform_console(root_copy, ROOT_BUNDLE, env)
        assert result.returncode == 0, f"terraform console in workspace {env} failed:\n{result.stderr}"
        out[env] = decode_console_json(result.stdout)
    return out


@pytest.fixture(scope="session")
def module_copy(tmp_path_factory, terraform_bin) -> Path:
    """modules/code-location's variables.tf + locals.tf with sample inputs."""
    tmp = tmp_path_factory.mktemp("terraform-module")
    (tmp / "terraform.tfvars").write_text(
        """
name             = "geospatial-pipeline"
namespace        = "dagster-dev"
image_repository = "registry.example/geospatial-pipeline"
image_tag        = "0.1.0"
resources        = { requests = { cpu = "250m", memory = "512Mi" }, limits = { cpu = "1", memory = "1Gi" } }
iam_role_arn     = "arn:aws:iam::123456789012:role/agri-fields-dev-geospatial-pipeline"
config_map_name  = "geospatial-pipeline-config"
""",
        encoding="utf-8",
    )
    return _provider_free_copy(tmp, MODULE_DIR, MODULE_PROVIDER_FREE)
