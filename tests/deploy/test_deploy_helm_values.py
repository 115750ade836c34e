"""k8s/helm/dagster-core.values.yaml against the Dagster chart's own values schema (../shared/reference).

The per-environment part rendered by Terraform is validated merged with this file in
test_deploy_terraform_cli.py (it needs the terraform binary); this file needs only jsonschema.
"""

from __future__ import annotations

import copy

import pytest
from deploy_support import (
    CONFIG_MAP_NAME,
    CONFIG_MOUNT_PATH,
    HELM_VALUES,
    chart_schema,
    load_yaml_documents,
    validate_chart_def,
    validate_chart_values,
)


@pytest.fixture(scope="module")
def values():
    documents = load_yaml_documents(HELM_VALUES)
    assert len(documents) == 1
    return documents[0]


def test_shared_core_values_validate_against_the_chart_schema(values):
    assert validate_chart_values(values) == []


def test_every_top_level_key_is_one_the_chart_names(values):
    schema = chart_schema()
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


def test_schema_check_rejects_a_misspelt_or_mistyped_key(values):
    """The validation above is not vacuous: a typo or a wrong type in the values fails it."""
    typo = copy.deepcopy(values)
    typo["dagsterDaemon"]["runCordinator"] = typo["dagsterDaemon"].pop("runCoordinator")
    assert any("runCordinator" in e for e in validate_chart_values(typo))
    wrong_type = copy.deepcopy(values)
    wrong_type["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"][0]["mountPath"] = 42
    assert validate_chart_values(wrong_type)
    unknown_volume_field = copy.deepcopy(values)
    unknown_volume_field["runLauncher"]["config"]["k8sRunLauncher"]["volumes"][0]["configMapp"] = {}
    assert validate_chart_values(unknown_volume_field)
    missing_launcher_config = copy.deepcopy(values)
    del missing_launcher_config["runLauncher"]["config"]["k8sRunLauncher"]
    assert validate_chart_values(missing_launcher_config)
    assert validate_chart_values({"concurency": {}}) == ["concurency: not a key of the dagster chart's values"]


def test_run_launcher_is_k8s_and_mounts_the_pipeline_config_map_into_run_pods(values):
    launcher = values["runLauncher"]
    assert validate_chart_def("RunLauncher", launcher) == []
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    volumes = {v["name"]: v for v in config["volumes"]}
    mounts = {m["name"]: m for m in config["volumeMounts"]}
    config_volumes = [n for n, v in volumes.items() if v.get("configMap", {}).get("name") == CONFIG_MAP_NAME]
    assert len(config_volumes) == 1
    assert mounts[config_volumes[0]]["mountPath"] == CONFIG_MOUNT_PATH
    assert mounts[config_volumes[0]]["readOnly"] is True
    assert "emptyDir" in volumes[next(n for n, m in mounts.items() if m["mountPath"] == "/tmp")]


def test_run_pods_are_non_root_with_a_read_only_root_filesystem(values):
    config = values["runLauncher"]["config"]["k8sRunLauncher"]
    container = config["securityContext"]
    assert container["runAsNonRoot"] is True and container["runAsUser"] >= 10000
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    pod = config["runK8sConfig"]["podSpecConfig"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert config["runK8sConfig"]["jobSpecConfig"]["backoffLimit"] == 0


def test_daemon_queues_runs_so_backfills_are_capped(values):
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert validate_chart_def("RunCoordinator", coordinator) == []
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    # The cap itself is per environment (terraform/environments.tf, max_concurrent).
    assert "maxConcurrentRuns" not in coordinator["config"]["queuedRunCoordinator"]


def test_code_locations_are_deployed_outside_the_core_release(values):
    user = values["dagster-user-deployments"]
    assert validate_chart_def("UserDeployments", user) == []
    assert user["enabled"] is True and user["enableSubchart"] is False and user["deployments"] == []
    workspace = values["dagsterWebserver"]["workspace"]
    assert workspace["enabled"] is True


def test_core_writes_nothing_to_local_disk_and_sends_no_telemetry(values):
    assert values["computeLogManager"]["type"] == "NoOpComputeLogManager"
    assert values["telemetry"] == {"enabled": False}
