"""Helpers shared by the deployment checks (tests/deploy): paths, tools, HCL, YAML and schemas.

Every external tool is looked up here; a test that needs one that is absent skips, naming it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
MODULE_DIR = TERRAFORM_DIR / "modules" / "code-location"
K8S_DIR = REPO / "k8s"
HELM_VALUES = K8S_DIR / "helm" / "dagster-core.values.yaml"
DOCKERFILE = REPO / "Dockerfile"
REFERENCE_DIR = REPO.parent / "shared" / "reference"
CHART_SCHEMA = REFERENCE_DIR / "dagster-chart-values.schema.json"

ENVIRONMENTS = ("dev", "prod")
# Oldest Kubernetes minor the manifests must be valid for.
KUBERNETES_VERSION = "1.32"
CONFIG_MAP_NAME = "geospatial-pipeline-config"
CONFIG_MOUNT_PATH = "/etc/dagster/config"
GRPC_COMMAND = [
    "dagster",
    "api",
    "grpc",
    "-m",
    "geospatial_pipeline.definitions",
    "-h",
    "0.0.0.0",
    "-p",
    "3030",
]

VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------- tools


def venv_tool(name: str) -> Path:
    """A console script installed next to the running interpreter (the project's .venv)."""
    path = VENV_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable} (scripts/bootstrap installs it)")
    return path


def system_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not on PATH on this machine: {why}")
    return path


def checkov_binary() -> str:
    local = REPO / ".tools" / "checkov" / "bin" / "checkov"
    if local.exists():
        return str(local)
    found = shutil.which("checkov")
    if found:
        return found
    pytest.skip("checkov is absent: run scripts/install-check-tools (it creates .tools/checkov)")


def terraform_env(tmp_home: Path | None = None) -> dict[str, str]:
    """Environment for an offline terraform: no version check calls, no prompts, no CLI config."""
    env = dict(os.environ)
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        TF_CLI_CONFIG_FILE=os.devnull,
        NO_COLOR="1",
    )
    env.pop("TF_WORKSPACE", None)
    if tmp_home is not None:
        env["TF_DATA_DIR"] = str(tmp_home / ".terraform")
    return env


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: int = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------------------- HCL


def load_hcl(path: Path) -> dict[str, Any]:
    """Parse a .tf file with python-hcl2: plain strings (no quotes), blocks as lists of dicts."""
    import hcl2

    text = path.read_text(encoding="utf-8")
    try:
        from hcl2.utils import SerializationOptions
    except ImportError:  # python-hcl2 < 8 already returns this shape
        return hcl2.loads(text)
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
    )
    return hcl2.loads(text, serialization_options=options)


def hcl_blocks(directory: Path, kind: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every `kind` block of the .tf files of a directory, keyed by its labels.

    resource/data: {(type, name): body}; module/variable/output: {(name,): body};
    locals: {(name,): value} merged over all locals blocks.
    """
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        for block in load_hcl(tf).get(kind, []):
            if kind == "locals":
                for name, value in block.items():
                    found[(name,)] = value
            elif kind in ("resource", "data"):
                for rtype, named in block.items():
                    for name, body in named.items():
                        found[(rtype, name)] = body
            else:
                for name, body in block.items():
                    found[(name,)] = body
    return found


def single(value: Any) -> Any:
    """A nested block that appears once: python-hcl2 gives a list of one dict."""
    if isinstance(value, list):
        assert len(value) == 1, f"expected one block, got {len(value)}: {value!r}"
        return value[0]
    return value


# ---------------------------------------------------------------------------- terraform console


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def terraform_console(
    workdir: Path, expression: str, workspace: str, var_files: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Evaluate one expression in a workspace (TF_WORKSPACE); output without colour codes.

    In piped mode the console reads one line per expression, so the expression is joined into one.
    """
    env = terraform_env()
    env["TF_WORKSPACE"] = workspace
    cmd = ["terraform", "console", *(f"-var-file={f}" for f in var_files)]
    one_line = " ".join(expression.split())
    result = run(cmd, cwd=workdir, env=env, stdin=one_line + "\n", timeout=120)
    return subprocess.CompletedProcess(
        result.args, result.returncode, _ANSI.sub("", result.stdout), _ANSI.sub("", result.stderr)
    )


def decode_console_json(stdout: str) -> Any:
    """Decode what `terraform console` prints for jsonencode(...): an HCL string literal of JSON."""
    literal = stdout.strip().splitlines()[-1]
    text = json.loads(literal)  # HCL's escapes in a one-line string are JSON's
    return json.loads(text.replace("$${", "${").replace("%%{", "%{"))


# ---------------------------------------------------------------------------- YAML and Helm values


def load_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def helm_merge(base: Any, override: Any) -> Any:
    """Merge two values documents the way Helm does: maps key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = helm_merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def chart_schema() -> dict[str, Any]:
    if not CHART_SCHEMA.is_file():
        pytest.skip(f"the Dagster chart schema is absent ({CHART_SCHEMA}); see ../shared/reference/README.md")
    return json.loads(CHART_SCHEMA.read_text(encoding="utf-8"))


def _without_defaulted_required(node: Any, in_then: bool = False) -> Any:
    """The schema with `required` dropped, except in if/then branches.

    The chart schema's `required` lists name every key of the chart's default values, which Helm
    merges under ours, so an override may leave them out. Conditional requirements (`then`, e.g.
    type K8sRunLauncher needs config.k8sRunLauncher) are not defaults and stay.
    """
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "required" and not in_then and isinstance(value, list):
                continue
            out[key] = _without_defaulted_required(value, in_then or key == "then")
        return out
    if isinstance(node, list):
        return [_without_defaulted_required(v, in_then) for v in node]
    return node


def _kubernetes_registry():
    """Resolve the chart schema's Kubernetes refs offline, from kubernetes-validate's bundled schemas.

    The chart refers to https://kubernetesjsonschema.dev/v1.18.0/_definitions.json#/definitions/<name>;
    kubernetes-validate ships the same definitions (strict: unknown fields rejected) under
    https://kubernetes.io/api/_definitions.json#/$defs/<name>.
    """
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    try:
        import kubernetes_validate
    except ImportError:
        pytest.skip("kubernetes-validate is not installed (it ships the Kubernetes schemas the chart refers to)")
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    wanted = f"v{KUBERNETES_VERSION}.0-local-strict"
    definitions = json.loads((root / wanted / "_definitions.json").read_text(encoding="utf-8"))
    bridge = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "definitions": {name: {"$ref": f"{definitions['$id']}#/$defs/{name}"} for name in definitions["$defs"]},
    }
    return Registry().with_resources(
        [
            (definitions["$id"], Resource.from_contents(definitions, default_specification=DRAFT202012)),
            (
                "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json",
                Resource.from_contents(bridge, default_specification=DRAFT202012),
            ),
        ]
    )


def chart_validator(subschema: dict[str, Any], *, relaxed: bool):
    """A validator for part of the chart's values: `relaxed` lets Helm's defaults fill required keys."""
    from jsonschema import Draft202012Validator

    schema = chart_schema()
    document = {**subschema, "$defs": schema["$defs"]}
    if relaxed:
        document = _without_defaulted_required(document)
    return Draft202012Validator(document, registry=_kubernetes_registry())


def validate_chart_values(values: dict[str, Any], *, relaxed: bool = True) -> list[str]:
    """Errors of a values document, key by key against the chart schema (see shared/reference)."""
    schema = chart_schema()
    errors = []
    for key, value in values.items():
        if key not in schema["properties"]:
            errors.append(f"{key}: not a key of the dagster chart's values")
            continue
        validator = chart_validator(schema["properties"][key], relaxed=relaxed)
        for error in validator.iter_errors(value):
            path = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"{key}.{path}: {error.message}")
    return errors


def validate_chart_def(definition: str, value: Any) -> list[str]:
    """Strict errors of `value` against one of the chart schema's $defs (every required key too)."""
    validator = chart_validator({"$ref": f"#/$defs/{definition}"}, relaxed=False)
    return [f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]
