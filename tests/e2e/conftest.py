"""A real Dagster deployment for one test: webserver and daemon on 127.0.0.1, a temporary DAGSTER_HOME,
and a temporary lake holding fixture landing batches. Every process started here is stopped here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.e2e_support import REPO, VENV_BIN, Deployment, free_port


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Not started: the test starts the webserver and the daemon in the order it needs."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The repository's instance settings (run queue caps, retries), with a faster queue poll for the test.
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    instance["run_coordinator"] = {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))

    lake = tmp_path / "lake"
    for date in ("2025-01-01", "2025-01-02"):
        shutil.copytree(REPO / "fixtures" / "raw" / date, lake / "raw" / date)
    config = yaml.safe_load((REPO / "fixtures" / "config.yaml").read_text())
    config["local_lake_path"] = str(lake)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOSPATIAL_PIPELINE_", "DAGSTER_", "AWS_"))}
    env.update(
        DAGSTER_HOME=str(home),
        GEOSPATIAL_PIPELINE_CONFIG=str(config_path),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        DAGSTER_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    dep = Deployment(home=home, lake=lake, port=free_port(), env=env, logs=logs)
    try:
        yield dep
    finally:
        dep.stop()
