"""The README's first command: land the fixture batches in ./lake and publish their partitions.

Uses a persistent Dagster instance (.dagster_home) so `make dev` shows these runs afterwards, and
closes the late-data loop the way the deployed sensor does: evaluate it, run what it requests.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.chdir(REPO)
os.environ.setdefault("GEOSPATIAL_PIPELINE_CONFIG", str(REPO / "fixtures" / "config.yaml"))
home = REPO / ".dagster_home"
home.mkdir(exist_ok=True)
if not (home / "dagster.yaml").exists():
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
os.environ["DAGSTER_HOME"] = str(home)

from dagster import DagsterInstance, build_sensor_context, materialize  # noqa: E402

from geospatial_pipeline.definitions import defs  # noqa: E402
from geospatial_pipeline.settings import load_settings  # noqa: E402


def main() -> int:
    settings = load_settings()
    lake = Path(settings.local_lake_path).resolve()
    for day in sorted((REPO / "fixtures" / "raw").iterdir()):
        shutil.copytree(day, lake / "raw" / day.name, dirs_exist_ok=True)
    dates = sorted(p.name for p in (lake / "raw").iterdir())
    instance = DagsterInstance.get()
    assets = list(defs.assets)
    resources = defs.resources

    def publish(date: str, why: str) -> None:
        result = materialize(
            assets,
            partition_key=date,
            instance=instance,
            resources=resources,
            tags={"geospatial_pipeline/trigger": why},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        manifest = json.loads((lake / "manifests" / f"{date}.json").read_text())
        c = manifest["counts"]
        print(
            f"  {date} [{why:9}] run {result.run_id[:8]}: {c['input_records']:3} records -> on_time {c['on_time']}, "
            f"late {c['late']}, rejected {c['rejected']}, superseded {c['superseded']}; "
            f"published {c['published_rows']} rows ({c['merged_late']} late merged)"
        )

    print(f"Lake: {lake}")
    for date in dates:
        publish(date, "daily")

    sensor = defs.resolve_sensor_def("late_data_backfill_sensor")
    with build_sensor_context(instance=instance, cursor=None, resources=resources) as context:
        result = sensor(context)
    for request in result.run_requests or []:
        publish(request.partition_key, "late-data")

    print("\nOutputs:")
    for pattern in (
        "fields/date=*/fields.parquet",
        "late_data/*/*.geojson",
        "rejected/*/rejected.geojsonl",
        "manifests/*.json",
    ):
        for path in sorted(lake.glob(pattern)):
            print(f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    print(
        "\nOpen fields/*.parquet or late_data/*/*.geojson in QGIS; `make dev` shows these runs at http://127.0.0.1:3000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
