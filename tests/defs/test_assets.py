"""The partition asset, materialized through Dagster on a real instance: what each of its three outputs
reports, what the run leaves in the manifest, and a day with nothing landed.

The published data itself is held to the fixtures in tests/integration/test_pipeline_fixtures.py.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pyarrow.parquet as pq
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.defs.assets import FIELDS, LATE, REJECTED, build_partition_assets
from geospatial_pipeline.lake import keys
from geospatial_pipeline.settings import PipelineSettings, load_settings
from tests.conftest import FIXTURES


def publish(settings: PipelineSettings, date: str, instance: DagsterInstance) -> ExecuteInProcessResult:
    defs = build_definitions(settings)
    result = materialize(list(defs.assets), partition_key=date, instance=instance, resources=defs.resources)
    assert result.success
    return result


def test_the_asset_defines_the_three_outputs_and_their_checks(fixture_settings: PipelineSettings):
    asset = build_partition_assets(fixture_settings)
    assert set(asset.keys) == {FIELDS, LATE, REJECTED}
    assert {(c.asset_key, c.name) for c in asset.check_specs} == {
        (FIELDS, "geoparquet_metadata_valid"),
        (FIELDS, "records_conserved"),
        (REJECTED, "rejected_ratio_within_threshold"),
    }
    assert asset.partitions_def.get_first_partition_key() == fixture_settings.partition_start_date.isoformat()
    assert asset.required_resource_keys >= {"lake"}


def test_each_output_reports_the_counts_of_the_manifest(lake_dir: Path, fixture_settings: PipelineSettings, instance):
    publish(fixture_settings, "2025-01-01", instance)  # day 2's late field F-101 is for day 1
    result = publish(fixture_settings, "2025-01-02", instance)
    manifest = json.loads((lake_dir / keys.manifest_key("2025-01-02")).read_text())
    counts = manifest["counts"]
    meta = {m.asset_key: m.materialization.metadata for m in result.get_asset_materialization_events()}

    assert meta[FIELDS]["dagster/row_count"].value == counts["published_rows"]
    assert meta[FIELDS]["input_records"].value == counts["input_records"]
    assert meta[FIELDS]["on_time"].value == counts["on_time"]
    assert meta[FIELDS]["uri"].value == manifest["outputs"]["fields"]["uri"]
    assert meta[FIELDS]["manifest"].value.endswith("manifests/2025-01-02.json")
    assert meta[LATE]["dagster/row_count"].value == counts["late"] == 2
    assert meta[LATE]["late_ratio"].value == round(counts["late"] / counts["input_records"], 6)
    assert meta[LATE]["late_by_intended_date"].value == manifest["late_by_intended_date"]
    assert meta[LATE]["late_objects_written"].value == 2 * counts["late"]
    assert meta[REJECTED]["dagster/row_count"].value == counts["rejected"]
    assert meta[REJECTED]["reasons"].value == manifest["reasons"]
    preview = meta[FIELDS]["preview"].value
    published = pq.read_table(lake_dir / keys.fields_key("2025-01-02"), columns=["field_id"])
    assert [r.data["field_id"] for r in preview.records] == published["field_id"].to_pylist()[:10]


def test_the_manifest_names_the_run_the_code_and_the_settings(
    lake_dir: Path, fixture_settings: PipelineSettings, instance
):
    result = publish(fixture_settings, "2025-01-01", instance)
    manifest = json.loads((lake_dir / keys.manifest_key("2025-01-01")).read_text())
    assert manifest["run_id"] == result.run_id
    assert manifest["code_version"] == version("geospatial-pipeline")
    assert manifest["config_digest"] == fixture_settings.digest()


def test_a_day_with_nothing_landed_publishes_empty_outputs_and_warns(tmp_path: Path, instance):
    settings = load_settings(FIXTURES / "config.yaml", local_lake_path=tmp_path / "lake")
    result = publish(settings, "2025-01-05", instance)
    meta = {m.asset_key: m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert [meta[k]["dagster/row_count"].value for k in (FIELDS, LATE, REJECTED)] == [0, 0, 0]
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "geoparquet_metadata_valid": True,
        "records_conserved": True,
        "rejected_ratio_within_threshold": True,
    }
    assert any("No raw files under" in (entry.user_message or "") for entry in instance.all_logs(result.run_id))
    assert (tmp_path / "lake" / keys.fields_key("2025-01-05")).is_file()
