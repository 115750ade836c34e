"""The code location as a whole: what it defines (against a checked-in snapshot), `dg list defs` and
`dg check defs` on it, and loading it from an installed package with no pyproject.toml beside it.

Refresh the snapshot after an intended change: `UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest
tests/test_definitions.py`, then review the diff of tests/snapshots/definitions.json.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.settings import load_settings
from tests.definitions_snapshot import describe

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "snapshots" / "definitions.json"
VENV_BIN = Path(sys.executable).parent


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without our settings variables (defaults apply) and with a throwaway DAGSTER_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOSPATIAL_PIPELINE_", "DAGSTER_"))}
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return {**env, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(VENV_BIN.parent), **extra}


def run(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_code_location_matches_its_snapshot(tmp_path):
    done = run([sys.executable, "-m", "tests.definitions_snapshot"], clean_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(done.stdout)
    expected = SNAPSHOT.read_text()
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), done.stdout.splitlines(True), "snapshot", "code location", n=2)
    )
    assert not diff, f"the code location changed; if intended, refresh the snapshot (see this module):\n{diff}"


def test_a_changed_setting_shows_in_the_snapshot():
    snapshot = json.loads(SNAPSHOT.read_text())
    changed = describe(build_definitions(load_settings(partition_start_date="2024-06-01", s3_max_attempts=3)))
    assert changed != snapshot
    ((name, partitions),) = changed["partitions"].items()
    assert partitions["start"] == "2024-06-01T00:00:00+00:00"
    assert {asset["partitions"] for asset in changed["assets"].values()} == {name}
    assert changed["resources"]["lake"]["config"]["s3"]["max_attempts"] == 3
    # Everything else is as in the snapshot.
    changed["partitions"] = snapshot["partitions"]
    for entry in [*changed["assets"].values(), *changed["jobs"].values()]:
        entry["partitions"] = next(iter(snapshot["partitions"]))
    changed["resources"]["lake"]["config"]["s3"]["max_attempts"] = 8
    assert changed == snapshot


def _dg(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    dg = VENV_BIN / "dg"
    if not dg.exists():
        pytest.skip(f"dg is not installed next to {sys.executable} (scripts/bootstrap installs dagster-dg-cli)")
    return run([str(dg), *args], clean_env(tmp_path, **env))


def test_dg_lists_what_the_snapshot_holds(tmp_path):
    done = _dg(tmp_path, "list", "defs", "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    listed = json.loads(done.stdout)
    snapshot = json.loads(SNAPSHOT.read_text())
    assert sorted(a["asset_key"] for a in listed["assets"]) == sorted(snapshot["assets"])
    assert sorted(c["key"] for c in listed["asset_checks"]) == sorted(snapshot["asset_checks"])
    assert sorted(j["name"] for j in listed["jobs"]) == sorted(snapshot["jobs"])
    assert sorted(s["name"] for s in listed["schedules"]) == sorted(snapshot["schedules"])
    assert sorted(s["name"] for s in listed["sensors"]) == sorted(snapshot["sensors"])
    assert sorted(r["name"] for r in listed["resources"]) == sorted(snapshot["resources"])


def test_dg_check_defs_passes(tmp_path):
    done = _dg(tmp_path, "check", "defs")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_dg_check_defs_fails_on_a_bad_setting_and_names_it(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("lateness_window_hours: -1\n")
    done = _dg(tmp_path, "check", "defs", GEOSPATIAL_PIPELINE_CONFIG=str(config))
    assert done.returncode != 0
    assert "lateness_window_hours" in done.stdout + done.stderr


def test_an_installed_package_loads_without_pyproject_and_picks_up_a_new_defs_module(tmp_path):
    """As in the image (a wheel in site-packages): the folder loader needs no pyproject.toml, and a module
    added to defs/ joins the code location without being listed anywhere."""
    site = tmp_path / "site"
    shutil.copytree(
        REPO / "geospatial_pipeline", site / "geospatial_pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    (site / "geospatial_pipeline" / "defs" / "extra_job.py").write_text(
        "from dagster import AssetSelection, define_asset_job\n"
        "extra_job = define_asset_job('extra_job', selection=AssetSelection.groups('field_boundaries'))\n"
    )
    code = (
        "import geospatial_pipeline\n"
        "from geospatial_pipeline.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "print(geospatial_pipeline.__file__)\n"
        "print(sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith('__')))\n"
        "print([s.name for s in repo.schedule_defs])\n"
    )
    done = run([sys.executable, "-c", code], clean_env(tmp_path, PYTHONPATH=str(site)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    origin, jobs, schedules = done.stdout.splitlines()
    assert origin.startswith(str(site))
    assert not list(tmp_path.rglob("pyproject.toml"))
    assert jobs == str(["extra_job", "publish_field_partition_job"])
    assert schedules == str(["publish_field_partition_job_schedule"])
