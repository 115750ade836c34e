"""checkov over terraform/, the Kubernetes manifests and the Dockerfile: zero failed checks.

checkov lives in its own virtualenv (scripts/install-check-tools); it runs offline with
--skip-download, once per framework. Every skip is an inline `checkov:skip=<ID>:<reason>` comment
next to the resource it concerns, and must give its reason.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from deploy_support import DOCKERFILE, K8S_DIR, REPO, TERRAFORM_DIR, checkov_binary, run

SKIP_COMMENT = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def checkov(target: list[str], framework: str) -> dict:
    binary = checkov_binary()
    result = run(
        [
            binary,
            *target,
            "--framework",
            framework,
            "--skip-download",
            "--compact",
            "--output",
            "json",
            "--download-external-modules",
            "false",
        ],
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode in (0, 1), f"checkov {framework} could not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    merged = {"passed": [], "failed": [], "skipped": [], "parsing_errors": [], "resource_count": 0}
    for rep in reports:
        if "results" not in rep:  # nothing of this framework found: only a summary
            continue
        merged["passed"] += rep["results"]["passed_checks"]
        merged["failed"] += rep["results"]["failed_checks"]
        merged["skipped"] += rep["results"]["skipped_checks"]
        merged["parsing_errors"] += rep["results"].get("parsing_errors", [])
        merged["resource_count"] += rep["summary"]["resource_count"]
    return merged


def describe(checks: list[dict]) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} -- {c['resource']} ({c['file_path']})" for c in checks)


@pytest.fixture(scope="module")
def terraform_report():
    return checkov(["--directory", str(TERRAFORM_DIR)], "terraform")


@pytest.fixture(scope="module")
def dockerfile_report():
    return checkov(["--file", str(DOCKERFILE)], "dockerfile")


@pytest.fixture(scope="module")
def kubernetes_report(tmp_path_factory):
    """The base manifests and, where kubectl exists, each overlay as kustomize renders it."""
    scan = tmp_path_factory.mktemp("k8s-scan")
    for path in (K8S_DIR / "base").glob("*.yaml"):
        if path.name != "kustomization.yaml":
            shutil.copy(path, scan / path.name)
    kubectl = shutil.which("kubectl")
    if kubectl:
        for overlay in ("dev", "prod"):
            rendered = run([kubectl, "kustomize", K8S_DIR / "overlays" / overlay])
            assert rendered.returncode == 0, rendered.stderr
            (scan / f"overlay-{overlay}.yaml").write_text(rendered.stdout)
    return checkov(["--directory", str(scan)], "kubernetes")


def test_checkov_terraform_has_no_failed_check(terraform_report):
    assert not terraform_report["parsing_errors"], terraform_report["parsing_errors"]
    assert not terraform_report["failed"], describe(terraform_report["failed"])
    # The scan covered the AWS side and the pipeline's Kubernetes objects of the module.
    ids = {c["check_id"] for c in terraform_report["passed"]}
    expected = {
        "CKV2_AWS_6",  # public access block
        "CKV_AWS_145",  # KMS encryption
        "CKV_AWS_21",  # versioning
        "CKV_K8S_20",  # no privilege escalation
        "CKV_K8S_22",  # read-only root filesystem
        "CKV_K8S_28",  # NET_RAW dropped
        "CKV_K8S_8",  # liveness probe
        "CKV_K8S_9",  # readiness probe
    }
    assert expected <= ids, sorted(expected - ids)


def test_checkov_dockerfile_has_no_failed_check(dockerfile_report):
    assert not dockerfile_report["parsing_errors"]
    assert not dockerfile_report["failed"], describe(dockerfile_report["failed"])
    assert {c["check_id"] for c in dockerfile_report["passed"]} >= {
        "CKV_DOCKER_2",
        "CKV_DOCKER_3",
        "CKV_DOCKER_7",
    }


def test_checkov_kubernetes_manifests_have_no_failed_check(kubernetes_report):
    assert not kubernetes_report["parsing_errors"], kubernetes_report["parsing_errors"]
    assert not kubernetes_report["failed"], describe(kubernetes_report["failed"])


def test_every_checkov_skip_gives_its_reason(terraform_report, dockerfile_report, kubernetes_report):
    skipped = terraform_report["skipped"] + dockerfile_report["skipped"] + kubernetes_report["skipped"]
    for check in skipped:
        assert len((check.get("check_result", {}).get("suppress_comment") or "").strip()) >= 20, describe([check])
    # Every skip comment in the sources names a reason, and checkov honoured it.
    comments = []
    for path in [*TERRAFORM_DIR.rglob("*.tf"), *K8S_DIR.rglob("*.yaml"), DOCKERFILE]:
        for match in SKIP_COMMENT.finditer(Path(path).read_text()):
            comments.append(match.group(1))
            assert match.group(2) and len(match.group(2).strip()) >= 20, f"{path}: {match.group(0)}"
    assert sorted(comments) == sorted({c["check_id"] for c in skipped}), (comments, describe(skipped))
