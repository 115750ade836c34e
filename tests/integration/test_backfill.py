"""The late-data loop over the fixtures: day 2 carries late day-1 fields, the sensor asks for day 1, the
backfill publishes them, and a backfill with nothing new reproduces the same GeoParquet bytes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import geopandas as gpd
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from dagster import AssetKey, build_sensor_context

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.defs.sensors import SENSOR_NAME, TRIGGER_TAG
from geospatial_pipeline.lake import keys
from geospatial_pipeline.settings import load_settings
from tests.lake.test_writers import late_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
D1, D2, D3 = "2025-01-01", "2025-01-02", "2025-01-03"
JOB = "publish_field_partition_job"


class Loop:
    def __init__(self, lake: Path, instance):
        self.defs = build_definitions(load_settings(FIXTURES / "config.yaml", local_lake_path=lake))
        self.instance = instance
        self.store = self.defs.resources["lake"].store()
        self.job = self.defs.resolve_job_def(JOB)

    def run(self, date: str, tags: dict | None = None) -> str:
        """One run of the partitioned job, as the schedule, the sensor or the UI launch it."""
        result = self.job.execute_in_process(partition_key=date, instance=self.instance, tags=tags or {})
        assert result.success
        return result.run_id

    def tick(self, cursor: str | None):
        (sensor,) = [s for s in self.defs.sensors if s.name == SENSOR_NAME]
        with build_sensor_context(instance=self.instance, cursor=cursor, resources=self.defs.resources) as ctx:
            return sensor(ctx)

    def fields(self, date: str) -> gpd.GeoDataFrame:
        return gpd.read_parquet(io.BytesIO(self.store.get_bytes(keys.fields_key(date))))

    def manifest(self, date: str) -> dict:
        return orjson.loads(self.store.get_bytes(keys.manifest_key(date)))


@pytest.fixture
def loop(tmp_path: Path, instance) -> Loop:
    lake = tmp_path / "lake"
    for date in (D1, D2):
        shutil.copytree(FIXTURES / "raw" / date, lake / "raw" / date)
    return Loop(lake, instance)


def _expected_day1(expected) -> set[str]:
    """Field ids of day 1 once day 2 is merged: its on-time fields and every late field meant for it."""
    ids = {r["field_id"] for r in expected[D1] if r["outcome"] == "on_time"}
    return ids | {r["field_id"] for d in (D1, D2) for r in expected[d] if r["late_for"] == D1}


def test_day2_late_fields_are_backfilled_into_day1(loop: Loop, expected):
    loop.run(D1)
    before = loop.fields(D1)
    assert "F-101" not in set(before.field_id)
    assert set(before.field_id) == {r["field_id"] for r in expected[D1] if r["outcome"] in ("on_time", "late")}

    loop.run(D2)
    tick = loop.tick(None)
    (request,) = tick.run_requests
    assert request.partition_key == D1
    assert request.tags[TRIGGER_TAG] == "late-data"

    backfill_run = loop.run(request.partition_key, {**request.tags, "dagster/run_key": request.run_key})

    fields = loop.fields(D1)
    assert fields.field_id.is_unique
    assert set(fields.field_id) == _expected_day1(expected)
    assert len(fields) == 9
    by_id = fields.set_index("field_id")
    f101 = by_id.loc["F-101"]
    assert f101.arrived_late and str(f101.detected_in) == D2
    f001 = by_id.loc["F-001"]  # the late copy (arrived 2025-01-02T05:00Z) replaced the on-time one
    assert f001.arrived_late and str(f001.detected_in) == D2
    assert json.loads(f001.data) == {"crop": "barley"}
    assert f001.area_ha == pytest.approx(319, abs=1.5)
    f005 = by_id.loc["F-005"]  # late, but detected by day 1's own run and merged there
    assert f005.arrived_late and str(f005.detected_in) == D1
    assert not by_id.loc["F-002"].arrived_late

    # The manifest records the batches this run merged and which of them were new.
    manifest = loop.manifest(D1)
    assert manifest["run_id"] == backfill_run
    assert [(b["key"], b["rows"], b["merged_before"]) for b in manifest["merged_late_batches"]] == [
        (keys.late_batch_key(D1, D1), 1, True),
        (keys.late_batch_key(D1, D2), 2, False),
    ]
    assert manifest["late_merge"]["new_batches"] == [keys.late_batch_key(D1, D2)]
    assert (manifest["late_merge"]["rows_new"], manifest["late_merge"]["rows_merged_before"]) == (2, 1)
    metadata = _latest_fields_metadata(loop.instance, D1)
    assert metadata["late_fields_merged_this_run"] == 2
    assert metadata["late_fields_merged_before"] == 1
    assert metadata["late_fields_published"] == 3

    # Backfill again with no new late data: the same bytes, and the sensor has nothing to ask for.
    first_bytes = loop.store.get_bytes(keys.fields_key(D1))
    loop.run(D1, {TRIGGER_TAG: "late-data"})
    assert loop.store.get_bytes(keys.fields_key(D1)) == first_bytes
    second = loop.manifest(D1)
    assert _without_run_metadata(second) == _without_run_metadata(manifest)
    assert second["late_merge"]["rows_new"] == 0 and second["late_merge"]["rows_merged_before"] == 3
    assert second["late_merge"]["previous_run_id"] == backfill_run
    assert _latest_fields_metadata(loop.instance, D1)["late_fields_merged_this_run"] == 0

    assert not loop.tick(tick.cursor).run_requests
    assert not loop.tick(None).run_requests


def _latest_fields_metadata(instance, date: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey("field_boundaries"))
    materialization = event.asset_materialization
    assert materialization.partition == date
    return {k: v.value for k, v in materialization.metadata.items()}


def _without_run_metadata(manifest: dict) -> dict:
    """A manifest minus what differs between two runs over the same inputs."""
    out = {k: v for k, v in manifest.items() if k not in ("run_id", "completed_at", "late_merge")}
    out["merged_late_batches"] = [
        {k: v for k, v in b.items() if k != "merged_before"} for b in manifest["merged_late_batches"]
    ]
    return out


def test_late_objects_and_batches_agree(tmp_path: Path, instance):
    """The per-field objects people read and the batches the backfill reads hold the same late fields."""
    lake = tmp_path / "lake"
    shutil.copytree(FIXTURES / "raw", lake / "raw")
    loop = Loop(lake, instance)
    for date in (D1, D2, D3):
        loop.run(date)

    intended_dates = sorted({keys.parse_late_batch_key(i.key)[0] for i in loop.store.list("late_data/_batches/")})
    assert intended_dates == [D1, D2]
    for date in intended_dates:
        batches = [
            pq.read_table(pa.BufferReader(loop.store.get_bytes(info.key)))
            for info in loop.store.list(keys.late_batches_prefix(date))
        ]
        rows = pa.concat_tables(batches).to_pylist()
        latest: dict[str, dict] = {}
        for row in sorted(rows, key=lambda r: r["arrival_time"]):
            latest[row["field_id"]] = row

        objects = {
            i.key.rsplit("/", 1)[1]: i.key
            for i in loop.store.list(f"late_data/{date}/")
            if not i.key.startswith(keys.LATE_BATCHES_PREFIX)
        }
        assert sorted(objects) == sorted(f"{fid}{ext}" for fid in latest for ext in (".geojson", ".txt"))
        for fid, row in latest.items():
            feature = orjson.loads(loop.store.get_bytes(keys.late_object_key(date, fid, ".geojson")))
            props = feature["properties"]
            assert feature["id"] == fid
            assert props["processing_date"] == date == row["processing_date"].isoformat()
            assert props["detected_in"] == row["detected_in"].isoformat()
            assert props["arrival_time"].replace("Z", "+00:00") == row["arrival_time"].isoformat()
            for name in ("late_reason", "source_crs", "repaired", "source_key", "source_line"):
                assert props[name] == row[name], (fid, name)
            for name in ("area_ha", "perimeter_m"):
                assert props[name] == pytest.approx(row[name], rel=1e-12), (fid, name)
            assert props["data"] == json.loads(row["data"])
            assert props["arrived_late"] is True and row["arrived_late"] is True
            geometry = shapely.from_geojson(json.dumps(feature["geometry"]))
            assert shapely.equals_exact(geometry, shapely.from_wkb(row["geometry"]), tolerance=1e-9)
            text = loop.store.get_bytes(keys.late_object_key(date, fid, ".txt")).decode()
            assert text == late_text(fid, row["processing_date"], row["arrival_time"], row["detected_in"])
