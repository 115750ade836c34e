"""The package keeps the shape docs/architecture.md describes: which folder may import which, and who may
talk to Dagster and to boto3. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geospatial_pipeline"

# Package modules each part may import (by prefix).
ALLOWED = {
    "core": ("geospatial_pipeline.core",),
    "lake": ("geospatial_pipeline.core", "geospatial_pipeline.lake"),
    "settings": ("geospatial_pipeline.core.rules", "geospatial_pipeline.lake.limits"),
    "defs": (
        "geospatial_pipeline.core.rules",
        "geospatial_pipeline.lake",
        "geospatial_pipeline.settings",
        "geospatial_pipeline.defs",
    ),
    "definitions": ("geospatial_pipeline.defs", "geospatial_pipeline.settings"),
    # The export command: the published columns, the lake's keys, store and writers, and the lake from the
    # settings as the pipeline opens it (defs.resources, imported once arguments are parsed).
    "export": (
        "geospatial_pipeline.core.schema",
        "geospatial_pipeline.lake",
        "geospatial_pipeline.settings",
        "geospatial_pipeline.defs.resources",
        "geospatial_pipeline.export",
    ),
}
DAGSTER = ("dagster", "dagster_aws")
AWS = ("boto3", "botocore")
AWS_MODULES = {"lake/s3_store.py", "defs/resources.py"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_folder_may(path: Path):
    name = part(path)
    if name == "__init__":
        return
    relative = path.relative_to(PACKAGE).as_posix()
    names = imported(path)
    ours = {n for n in names if _under(n, ("geospatial_pipeline",))}
    assert not [n for n in ours if not _under(n, ALLOWED[name])], f"{relative} imports outside {ALLOWED[name]}"
    if name not in ("defs", "definitions"):
        assert not [n for n in names if _under(n, DAGSTER)], f"{relative} imports Dagster"
    if relative not in AWS_MODULES:
        assert not [n for n in names if _under(n, AWS)], f"{relative} talks to boto3/botocore"


def test_the_rules_are_checked_on_every_module():
    assert {part(p) for p in modules()} - {"__init__"} == set(ALLOWED)


def test_loading_settings_imports_no_geometry_or_compiled_code():
    code = (
        "import sys\n"
        "from geospatial_pipeline.settings import load_settings\n"
        "load_settings().rules()\n"
        "print(sorted(m for m in ('numba', 'shapely', 'pyarrow', 'dagster', 'boto3') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
