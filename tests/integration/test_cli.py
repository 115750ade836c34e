"""The documented command line: `dagster asset materialize ... --select '*' --partition D` in a folder
materializes that partition into ./lake with the embedded defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES


def test_dagster_cli_materializes_a_partition_into_the_local_lake(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(FIXTURES / "raw" / "2025-01-02", work / "lake" / "raw" / "2025-01-02")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOSPATIAL_PIPELINE_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    Path(env["DAGSTER_HOME"]).mkdir()
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "geospatial_pipeline.definitions",
            "--select",
            "*",
            "--partition",
            "2025-01-02",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    lake = work / "lake"
    manifest = json.loads((lake / "manifests" / "2025-01-02.json").read_text())
    # Embedded defaults (whole world): the fixture day 2 has 2 on time, 2 late, 2 rejected.
    assert manifest["counts"]["on_time"] == 2 and manifest["counts"]["late"] == 2
    assert (lake / "fields" / "date=2025-01-02" / "fields.parquet").is_file()
    assert (lake / "late_data" / "2025-01-01" / "F-101.txt").read_text().startswith("Late field: F-101")
    assert "DeprecationWarning" not in proc.stderr
