"""The package keeps the shape docs/architecture.md describes: which folder may import which, and who may
talk to Dagster and to boto3 (every import counts, including those inside functions); and the tests
mirror it, a test module beside each product module with behaviour of its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geospatial_pipeline"
TESTS = Path(__file__).resolve().parent

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


# Modules without a test module of their own, and where what they do is tested.
TESTED_ELSEWHERE = {
    "core/arrays.py": "type aliases only",
    "core/json_kernels.py": "the JSON grammar's kernels: held to Python's json by tests/core/test_scan.py",
    "core/rules.py": "plain values; built from settings in tests/test_settings.py",
    "lake/limits.py": "plain values; built from settings in tests/test_settings.py",
    "defs/jobs.py": "one declaration; in tests/snapshots/definitions.json (tests/test_definitions.py)",
    "defs/partitions.py": "one declaration; in the definitions snapshot and tests/test_definitions.py",
    "export/lake_reader.py": "tests/export/test_export_gpkg.py, test_export_errors.py, test_export_s3.py",
    "export/run.py": "tests/export/test_export_gpkg.py, test_sinks.py, test_export_errors.py",
}


def mirror(path: Path) -> Path:
    relative = path.relative_to(PACKAGE)
    return TESTS.joinpath(*relative.parts[:-1], f"test_{relative.name}")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_has_a_test_module_beside_it(path: Path):
    relative = path.relative_to(PACKAGE).as_posix()
    if path.name == "__init__.py" or relative in TESTED_ELSEWHERE:
        return
    assert mirror(path).is_file(), f"{relative} has no {mirror(path).relative_to(TESTS.parent)}"


def test_the_exceptions_name_modules_that_exist_and_have_no_mirror():
    for relative in TESTED_ELSEWHERE:
        assert (PACKAGE / relative).is_file(), relative
        assert not mirror(PACKAGE / relative).is_file(), f"{relative} has its own test module now"
