"""Structure of terraform/, read with python-hcl2 (no terraform binary, no providers needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy_support import (
    CONFIG_MAP_NAME,
    CONFIG_MOUNT_PATH,
    K8S_DIR,
    MODULE_DIR,
    REPO,
    TERRAFORM_DIR,
    hcl_blocks,
    load_hcl,
    load_yaml_documents,
    single,
)

RESOURCES = hcl_blocks(TERRAFORM_DIR, "resource")
DATA = hcl_blocks(TERRAFORM_DIR, "data")
LOCALS = hcl_blocks(TERRAFORM_DIR, "locals")
VARIABLES = hcl_blocks(TERRAFORM_DIR, "variable")
MODULE_RESOURCES = hcl_blocks(MODULE_DIR, "resource")
MODULE_LOCALS = hcl_blocks(MODULE_DIR, "locals")


def local(name: str):
    return LOCALS[(name,)]


def test_state_backend_is_s3_configured_entirely_by_backend_config():
    terraform = single(load_hcl(TERRAFORM_DIR / "versions.tf")["terraform"])
    backend = single(terraform["backend"])
    assert list(backend) == ["s3"], "state must live in the existing S3 bucket"
    # Partial configuration: bucket, key and region come from -backend-config, never the code.
    assert backend["s3"] == {}, f"backend settings must be passed with -backend-config, found {backend['s3']}"


def test_every_provider_and_terraform_itself_are_version_constrained():
    terraform = single(load_hcl(TERRAFORM_DIR / "versions.tf")["terraform"])
    assert terraform["required_version"]
    providers = single(terraform["required_providers"])
    assert set(providers) == {"aws", "kubernetes", "helm"}
    for name, spec in providers.items():
        assert spec["source"] == f"hashicorp/{name}"
        assert re.search(r"[~<]", spec["version"]), f"{name} needs an upper bound, got {spec['version']!r}"


def test_environment_is_the_workspace_and_only_dev_and_prod_are_accepted():
    assert set(local("environments")) == {"dev", "prod"}
    env = local("env")
    assert "terraform.workspace" in env
    # Anything else hits the guard, whose message tells the operator what to do.
    assert "contains(keys(local.environments), terraform.workspace)" in env
    assert "is not an environment" in env and "terraform workspace select" in env
    assert local("settings") == "${local.environments[local.env]}"


def test_per_environment_settings_live_in_one_map_with_the_same_keys():
    envs = local("environments")
    assert set(envs["dev"]) == set(envs["prod"])
    for key in (
        "namespace",
        "image_tag",
        "s3_prefix",
        "log_level",
        "lateness_hours",
        "max_concurrent",
        "code_server",
        "run_resources",
        "retention",
    ):
        assert key in envs["dev"], f"per-environment setting {key} missing"
    assert envs["dev"]["namespace"] != envs["prod"]["namespace"]
    assert envs["prod"]["max_concurrent"] >= envs["dev"]["max_concurrent"]
    # No other file hard-codes an environment name.
    for tf in TERRAFORM_DIR.rglob("*.tf"):
        if tf.name != "environments.tf":
            assert not re.search(r'"(dev|prod)"', tf.read_text()), f"{tf} names an environment"


def test_bucket_is_named_prefix_env_data():
    assert local("bucket_name") == "${var.resource_prefix}-${local.env}-data"
    assert "validation" in VARIABLES[("resource_prefix",)]


def test_data_bucket_blocks_public_access_and_encrypts_with_a_rotated_kms_key():
    pab = RESOURCES[("aws_s3_bucket_public_access_block", "data")]
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[flag] is True, flag
    sse = single(
        single(RESOURCES[("aws_s3_bucket_server_side_encryption_configuration", "data")]["rule"])[
            "apply_server_side_encryption_by_default"
        ]
    )
    assert sse["sse_algorithm"] == "aws:kms"
    assert sse["kms_master_key_id"] == "${aws_kms_key.data.arn}"
    assert RESOURCES[("aws_kms_key", "data")]["enable_key_rotation"] is True
    versioning = single(RESOURCES[("aws_s3_bucket_versioning", "data")]["versioning_configuration"])
    assert versioning["status"] == "Enabled"
    ownership = single(RESOURCES[("aws_s3_bucket_ownership_controls", "data")]["rule"])
    assert ownership["object_ownership"] == "BucketOwnerEnforced"


def test_bucket_policy_denies_every_request_without_tls():
    policy = RESOURCES[("aws_s3_bucket_policy", "data")]["policy"]
    assert policy.startswith("${jsonencode(")
    assert re.search(r'Effect\s*=\s*"Deny"', policy)
    assert re.search(r'Principal\s*=\s*"\*"', policy)
    assert re.search(r'Bool\s*=\s*\{\s*"aws:SecureTransport"\s*=\s*"false"', policy)
    assert '"s3:TlsVersion" = "1.2"' in policy
    assert "${aws_s3_bucket.data.arn}/*" in policy


def test_lifecycle_rules_expire_rejected_and_late_data_and_clean_up_versions():
    rules = {r["id"]: r for r in RESOURCES[("aws_s3_bucket_lifecycle_configuration", "data")]["rule"]}
    assert single(rules["rejected-expiry"]["filter"])["prefix"] == "${local.key_prefix}rejected/"
    assert "rejected_days" in single(rules["rejected-expiry"]["expiration"])["days"]
    assert single(rules["late-data-expiry"]["filter"])["prefix"] == "${local.key_prefix}late_data/"
    assert "late_data_days" in single(rules["late-data-expiry"]["expiration"])["days"]
    assert single(rules["raw-tiering"]["filter"])["prefix"] == "${local.key_prefix}raw/"
    hygiene = rules["whole-bucket-hygiene"]
    assert "abort_incomplete_multipart_upload" in hygiene and "noncurrent_version_expiration" in hygiene
    # Published fields and manifests are never expired.
    assert not any("fields/" in str(r) or "manifests/" in str(r) for r in rules.values())
    assert local("key_prefix") == '${local.s3_prefix == "" ? "" : "${local.s3_prefix}/"}'


def test_irsa_trust_policy_admits_only_the_pipelines_service_account_through_the_cluster_oidc_provider():
    provider = DATA[("aws_iam_openid_connect_provider", "cluster")]
    assert provider["url"] == "${data.aws_eks_cluster.this.identity[0].oidc[0].issuer}"
    assert "aws_eks_cluster" in {t for t, _ in DATA}
    trust = DATA[("aws_iam_policy_document", "pipeline_trust")]
    assert trust["for_each"] == "${local.pipelines}"
    statement = single(trust["statement"])
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    principal = single(statement["principals"])
    assert principal == {
        "type": "Federated",
        "identifiers": ["${data.aws_iam_openid_connect_provider.cluster.arn}"],
    }
    conditions = {c["variable"]: c for c in statement["condition"]}
    sub = conditions["${local.oidc_issuer}:sub"]
    assert sub["test"] == "StringEquals"
    assert sub["values"] == ["system:serviceaccount:${local.namespace}:${each.value.service_account}"]
    aud = conditions["${local.oidc_issuer}:aud"]
    assert aud["test"] == "StringEquals" and aud["values"] == ["sts.amazonaws.com"]
    role = RESOURCES[("aws_iam_role", "pipeline")]
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.pipeline_trust[each.key].json}"
    # The service account the trust names is the one the module creates and annotates.
    assert "service_account = name" in " ".join(local("pipelines").split())
    sa = MODULE_RESOURCES[("kubernetes_service_account_v1", "this")]
    metadata = single(sa["metadata"])
    assert metadata["name"] == "${var.name}"
    assert metadata["annotations"] == {"eks.amazonaws.com/role-arn": "${var.iam_role_arn}"}


def test_pipeline_policy_grants_only_list_get_put_delete_under_the_prefix():
    doc = DATA[("aws_iam_policy_document", "pipeline_lake")]
    statements = {s["sid"]: s for s in doc["statement"]}
    assert set(statements) == {"ListOwnPrefix", "ReadWriteOwnPrefix", "UseLakeKeyThroughS3"}
    assert all(s["effect"] == "Allow" for s in statements.values())
    listing = statements["ListOwnPrefix"]
    assert listing["actions"] == ["s3:ListBucket"] and listing["resources"] == ["${aws_s3_bucket.data.arn}"]
    condition = single(listing["condition"])
    assert condition["variable"] == "s3:prefix"
    assert condition["values"] == ["${local.key_prefix}", "${local.key_prefix}*"]
    objects = statements["ReadWriteOwnPrefix"]
    assert sorted(objects["actions"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert objects["resources"] == ["${local.lake_objects_arn}"]
    assert local("lake_objects_arn") == "${aws_s3_bucket.data.arn}/${local.key_prefix}*"
    kms = statements["UseLakeKeyThroughS3"]
    assert kms["resources"] == ["${aws_kms_key.data.arn}"]
    assert single(kms["condition"])["variable"] == "kms:ViaService"
    # No wildcard action anywhere in the pipeline's permissions.
    assert not any("*" in a for s in statements.values() for a in s["actions"])


def test_no_static_credentials_anywhere_in_the_deployment():
    forbidden = re.compile(
        r"(aws_iam_access_key|access_key\s*=|secret_key\s*=|AKIA[0-9A-Z]{16}|AWS_SECRET_ACCESS_KEY|"
        r"postgresqlPassword|aws_iam_user\b)"
    )
    files = [
        *TERRAFORM_DIR.rglob("*.tf"),
        *TERRAFORM_DIR.glob("*.example"),
        *K8S_DIR.rglob("*.yaml"),
        REPO / "Dockerfile",
    ]
    offenders = [f"{f.relative_to(REPO)}: {m.group(0)}" for f in files for m in forbidden.finditer(f.read_text())]
    assert not offenders, offenders
    # The bundled database's password comes from a secret created out of band, never generated from values.
    values = load_yaml_documents(K8S_DIR / "helm" / "dagster-core.values.yaml")[0]
    assert values["generatePostgresqlPasswordSecret"] is False


def test_pipeline_module_is_instantiated_once_per_pipeline():
    modules = hcl_blocks(TERRAFORM_DIR, "module")
    assert list(modules) == [("pipeline",)]
    pipeline = modules[("pipeline",)]
    assert pipeline["source"] == "./modules/code-location"
    assert pipeline["for_each"] == "${local.pipelines}"
    assert pipeline["name"] == "${each.key}"
    assert pipeline["iam_role_arn"] == "${aws_iam_role.pipeline[each.key].arn}"
    assert local("pipelines").startswith("${{for name, p in var.pipelines : name =>")
    assert "map(object(" in VARIABLES[("pipelines",)]["type"]
    # One role per pipeline, so each service account gets its own trust relationship.
    assert RESOURCES[("aws_iam_role", "pipeline")]["for_each"] == "${local.pipelines}"


def test_code_location_module_serves_grpc_non_root_read_only_with_probes_and_the_config_volume():
    deployment = MODULE_RESOURCES[("kubernetes_deployment_v1", "this")]
    pod = single(single(single(deployment["spec"])["template"])["spec"])
    assert pod["service_account_name"] == "${kubernetes_service_account_v1.this.metadata[0].name}"
    pod_security = single(pod["security_context"])
    assert pod_security["run_as_non_root"] is True
    assert single(pod_security["seccomp_profile"])["type"] == "RuntimeDefault"
    container = single(pod["container"])
    assert container["command"] == ["dagster", "api", "grpc"]
    assert container["args"] == ["-m", "${var.module_name}", "-h", "0.0.0.0", "-p", "${tostring(var.port)}"]
    security = single(container["security_context"])
    assert security["read_only_root_filesystem"] is True
    assert security["allow_privilege_escalation"] is False
    assert security["run_as_non_root"] is True
    assert single(security["capabilities"])["drop"] == ["ALL"]
    for probe in ("startup_probe", "readiness_probe", "liveness_probe"):
        command = single(single(container[probe])["exec"])["command"]
        assert command[:3] == ["dagster", "api", "grpc-health-check"], probe
    resources = single(container["resources"])
    assert set(resources["requests"]) == {"cpu", "memory"} and set(resources["limits"]) == {"cpu", "memory"}
    mounts = {m["name"]: m for m in container["volume_mount"]}
    assert mounts["pipeline-config"]["mount_path"] == "${local.config_mount_path}"
    assert mounts["pipeline-config"]["read_only"] is True
    assert MODULE_LOCALS[("config_mount_path",)] == CONFIG_MOUNT_PATH
    volumes = {v["name"]: v for v in pod["volume"]}
    assert single(volumes["pipeline-config"]["config_map"])["name"] == "${var.config_map_name}"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DAGSTER_CONTAINER_CONTEXT"] == "${jsonencode(local.container_context)}"
    assert env["DAGSTER_CURRENT_IMAGE"] == "${local.image}"
    service = single(MODULE_RESOURCES[("kubernetes_service_v1", "this")]["spec"])
    assert single(service["port"])["port"] == "${var.port}"
    assert service["selector"] == "${local.selector_labels}"


def test_config_map_is_geospatial_pipeline_config_holding_the_rendered_config_yaml():
    config_map = RESOURCES[("kubernetes_config_map_v1", "pipeline_config")]
    assert single(config_map["metadata"])["name"] == "${local.config_map_name}"
    assert local("config_map_name") == CONFIG_MAP_NAME
    assert config_map["data"] == {"config.yaml": "${local.pipeline_config_yaml}"}
    assert local("pipeline_config_yaml") == "${yamlencode(local.pipeline_config)}"


def test_config_yaml_keys_are_fields_the_pipeline_settings_model_accepts():
    from geospatial_pipeline.settings import PipelineSettings

    keys = set(local("pipeline_config"))
    unknown = keys - set(PipelineSettings.model_fields)
    assert not unknown, f"config.yaml keys the pipeline would refuse: {sorted(unknown)}"
    assert {"s3_bucket", "s3_prefix", "log_level", "lateness_window_hours"} <= keys
    assert local("pipeline_config")["s3_bucket"] == "${local.bucket_name}"
    assert "s3_endpoint_url" not in keys, "in AWS the endpoint is the default one"


def test_helm_release_pins_the_chart_and_passes_values_as_yaml():
    release = RESOURCES[("helm_release", "dagster")]
    assert release["chart"] == "dagster"
    assert release["version"] == "${var.dagster_chart_version}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", VARIABLES[("dagster_chart_version",)]["default"])
    assert "set" not in release and "set_sensitive" not in release
    assert release["values"] == [
        '${file("${path.module}/../k8s/helm/dagster-core.values.yaml")}',
        "${yamlencode(local.dagster_env_values)}",
    ]


def test_helm_chart_version_matches_the_dagster_version_in_poetry_lock():
    lock = (REPO / "poetry.lock").read_text()
    locked = re.search(r'\[\[package\]\]\nname = "dagster"\nversion = "([^"]+)"', lock)
    assert locked, "dagster not found in poetry.lock"
    assert VARIABLES[("dagster_chart_version",)]["default"] == locked.group(1), (
        "core (chart) and code locations (image) should run the same Dagster release"
    )


def test_per_environment_console_inputs_are_provider_free():
    """environments.tf and variables.tf stay evaluable by `terraform console` without providers."""
    for name in (
        "environments.tf",
        "variables.tf",
        "modules/code-location/locals.tf",
        "modules/code-location/variables.tf",
    ):
        parsed = load_hcl(TERRAFORM_DIR / name)
        assert not {"resource", "data", "provider", "module"} & set(parsed), name


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_namespace_quota_fits_the_concurrent_run_cap(env):
    settings = local("environments")[env]
    overlay = K8S_DIR / "overlays" / env
    quota = next(d for d in load_yaml_documents(overlay / "resourcequota.yaml") if d["kind"] == "ResourceQuota")
    hard = quota["spec"]["hard"]
    runs = settings["max_concurrent"]

    def cpu(v: str) -> float:
        return float(v[:-1]) / 1000 if v.endswith("m") else float(v)

    def gib(v: str) -> float:
        units = {"Mi": 1 / 1024, "Gi": 1}
        return float(v[:-2]) * units[v[-2:]]

    for kind in ("requests", "limits"):
        run_res = settings["run_resources"][kind]
        assert cpu(hard[f"{kind}.cpu"]) >= runs * cpu(run_res["cpu"]), (env, kind)
        assert gib(hard[f"{kind}.memory"]) >= runs * gib(run_res["memory"]), (env, kind)
    assert int(hard["pods"]) > runs + settings["code_server"]["replicas"]
    kustomization = load_yaml_documents(overlay / "kustomization.yaml")[0]
    assert kustomization["namespace"] == settings["namespace"]


def test_terraform_readme_walks_from_cluster_to_dev_and_prod():
    readme = (TERRAFORM_DIR / "README.md").read_text()
    for step in (
        "-backend-config",
        "terraform workspace new dev",
        "terraform workspace select prod",
        "terraform plan",
        "terraform apply",
        "port-forward",
        "docker push",
        "kubectl apply -k",
    ):
        assert step in readme, f"README misses `{step}`"
    assert 'apply -var="environment' not in readme


def test_k8s_readme_says_which_tool_deploys_what():
    readme = (K8S_DIR / "README.md").read_text()
    for obj in (
        "Deployment",
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "helm_release",
        "kustomize",
    ):
        assert obj in readme, obj


def test_each_kubernetes_object_is_defined_in_one_place():
    """kustomize owns the namespace guardrails; Terraform owns workloads: no kind in both."""
    kustomize_kinds = {
        doc["kind"]
        for path in K8S_DIR.rglob("*.yaml")
        for doc in load_yaml_documents(path)
        if isinstance(doc, dict) and "kind" in doc and doc["kind"] != "Kustomization"
    }
    terraform_kinds = {"Deployment", "Service", "ServiceAccount", "ConfigMap", "PodDisruptionBudget"}
    assert kustomize_kinds and not kustomize_kinds & terraform_kinds, kustomize_kinds & terraform_kinds
    tf_types = {t for t, _ in RESOURCES} | {t for t, _ in MODULE_RESOURCES}
    assert (
        not {
            "kubernetes_namespace_v1",
            "kubernetes_network_policy_v1",
            "kubernetes_resource_quota_v1",
            "kubernetes_limit_range_v1",
            "kubernetes_manifest",
        }
        & tf_types
    )
    assert Path(TERRAFORM_DIR / "kubernetes.tf").read_text().count('data "kubernetes_namespace_v1"') == 1
