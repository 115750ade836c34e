"""k8s/: yamllint, kubernetes-validate --strict on every manifest and on each kustomize overlay's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_support import (
    K8S_DIR,
    KUBERNETES_VERSION,
    load_yaml_documents,
    run,
    system_tool,
    venv_tool,
)

OVERLAYS = sorted(p.name for p in (K8S_DIR / "overlays").iterdir() if p.is_dir())


def manifest_files() -> list[Path]:
    """Every Kubernetes object file of k8s/ (kustomization files and Helm values are not objects)."""
    files = []
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        docs = load_yaml_documents(path)
        if (
            docs
            and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)
            and not any(d["kind"] == "Kustomization" for d in docs)
        ):
            files.append(path)
    return files


def kubernetes_validate(paths: list[str], stdin: str | None = None):
    tool = venv_tool("kubernetes-validate")
    return run([tool, "--strict", "-k", KUBERNETES_VERSION, *paths], stdin=stdin)


def kustomize(overlay: str) -> str:
    kubectl = system_tool("kubectl", "`kubectl kustomize` renders the overlays")
    result = run([kubectl, "kustomize", K8S_DIR / "overlays" / overlay])
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_overlays_exist_for_dev_and_prod():
    assert OVERLAYS == ["dev", "prod"]


def test_yaml_files_are_yamllint_clean():
    yamllint = venv_tool("yamllint")
    result = run([yamllint, "-s", "-f", "parsable", "-c", K8S_DIR / ".yamllint.yaml", K8S_DIR])
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_config_catches_a_bad_file(tmp_path):
    """The lint step is not vacuous: a duplicated key fails it."""
    yamllint = venv_tool("yamllint")
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\na: 1\na: 2\n")
    assert run([yamllint, "-s", "-c", K8S_DIR / ".yamllint.yaml", bad]).returncode != 0


def test_every_manifest_validates_strictly_against_the_kubernetes_schema():
    files = manifest_files()
    assert len(files) >= 5, files
    result = kubernetes_validate([str(f) for f in files])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout, f"a kind without a schema is not validated:\n{result.stdout}"
    assert result.stdout.count("passed for resource") == sum(len(load_yaml_documents(f)) for f in files)


def test_strict_validation_rejects_an_unknown_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: LimitRange\nmetadata: {name: x}\nspec: {limitz: []}\n")
    assert kubernetes_validate([str(bad)]).returncode != 0


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kustomize_overlay_output_validates_strictly(overlay):
    rendered = kustomize(overlay)
    result = kubernetes_validate(["-"], stdin=rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout
    kinds = {line.split("/")[0].split()[-1] for line in result.stdout.splitlines() if "passed for resource" in line}
    assert {"namespace", "limitrange", "networkpolicy", "resourcequota"} <= kinds


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kustomize_overlay_puts_everything_in_the_environments_namespace(overlay):
    import yaml

    objects = [d for d in yaml.safe_load_all(kustomize(overlay)) if d]
    namespace = f"dagster-{overlay}"
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == namespace
        else:
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]
        assert obj["metadata"]["labels"]["environment"] == overlay
    assert sum(o["kind"] == "Namespace" for o in objects) == 1


def test_namespace_enforces_pod_security_and_ingress_is_namespace_local():
    namespace = load_yaml_documents(K8S_DIR / "base" / "namespace.yaml")[0]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in ("baseline", "restricted")
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    policy = load_yaml_documents(K8S_DIR / "base" / "networkpolicy.yaml")[0]
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
