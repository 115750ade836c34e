"""FlatGeobuf (GDAL) and GeoParquet (pyarrow: pyogrio's GDAL has no Parquet driver) exports, one layer per
file, read back with GDAL, geopandas and the GeoParquet validator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pyarrow.parquet as pq
import pyogrio
import pytest

from geospatial_pipeline.core.schema import FIELD_SCHEMA
from geospatial_pipeline.export.cli import main
from geospatial_pipeline.export.layers import REJECTED_SCHEMA
from geospatial_pipeline.lake import keys
from tests.conftest import FIXTURE_DATES

VALIDATOR = Path(sys.executable).parent / "geoparquet-validator"
RANGE = ["--from", FIXTURE_DATES[0], "--to", FIXTURE_DATES[-1]]


def published_rows(lake: Path, count: str) -> int:
    return sum(json.loads((lake / keys.manifest_key(day)).read_text())["counts"][count] for day in FIXTURE_DATES)


def validate(path: Path) -> None:
    if not VALIDATOR.exists():
        pytest.skip(f"geoparquet-validator is not installed in {VALIDATOR.parent}")
    proc = subprocess.run([str(VALIDATOR), "check", "--json", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = json.loads(proc.stdout)["outcomes"]
    assert not [o for o in outcomes if o["status"] not in ("pass", "skip")], outcomes


def test_pyogrio_gdal_has_no_parquet_driver():
    """Why GeoParquet is written with pyarrow: should a pyogrio wheel gain the driver, this says so."""
    assert "Parquet" not in pyogrio.list_drivers()


def test_flatgeobuf_fields_open_with_gdal(published_lake, tmp_path):
    out = tmp_path / "fields.fgb"
    assert main(["--lake", str(published_lake), *RANGE, "--output", str(out)]) == 0  # format from the suffix
    info = pyogrio.read_info(out)
    assert info["driver"] == "FlatGeobuf" and info["geometry_type"] == "MultiPolygon"
    assert info["features"] == published_rows(published_lake, "published_rows")
    frame = pyogrio.read_dataframe(out)
    assert frame.crs.to_epsg() == 4326
    assert {"field_id", "arrived_late", "repaired", "area_ha", "data", "bbox_xmin"} <= set(frame.columns)
    assert set(frame.loc[frame.repaired, "field_id"]) == {"F-006"}
    # Its spatial index answers a bbox query: the fields around 10.0-10.3 E, 50.0 N of 2025-01-01.
    near = pyogrio.read_dataframe(out, bbox=(9.99, 49.99, 10.25, 50.03))
    assert set(near.field_id) == {"F-001", "F-004", "F-005"}


def test_flatgeobuf_rejected_records_keep_rows_without_geometry(published_lake, tmp_path):
    out = tmp_path / "rejected.fgb"
    assert main(["--lake", str(published_lake), *RANGE, "--layer", "rejected_records", "-o", str(out)]) == 0
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == published_rows(published_lake, "rejected")
    assert frame.geometry.isna().any() and frame.geometry.notna().any()


def test_geoparquet_fields_are_the_lake_rows_with_valid_metadata(published_lake, tmp_path):
    out = tmp_path / "fields.parquet"
    assert main(["--lake", str(published_lake), *RANGE, "--format", "parquet", "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == FIELD_SCHEMA
    lake = pq.read_table([published_lake / keys.fields_key(day) for day in FIXTURE_DATES], schema=FIELD_SCHEMA)
    assert table.equals(lake.select(FIELD_SCHEMA.names))
    geo = json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]
    assert geo["geometry_types"] == ["MultiPolygon", "Polygon"]  # the repaired bow-tie is two triangles
    frame = gpd.read_parquet(out)
    assert geo["bbox"] == pytest.approx(list(frame.total_bounds))
    validate(out)


def test_geoparquet_rejected_records_with_nullable_geometry(published_lake, tmp_path):
    out = tmp_path / "rejected.parquet"
    argv = ["--lake", str(published_lake), *RANGE, "--layer", "rejected_records", "-o", str(out)]
    assert main(argv) == 0
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == REJECTED_SCHEMA
    assert table.num_rows == published_rows(published_lake, "rejected")
    geo = json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]
    assert set(geo["geometry_types"]) == {"Point", "Polygon"}
    frame = gpd.read_parquet(out)
    assert geo["bbox"] == list(frame.total_bounds)
    # The bbox covering is null exactly where the geometry is.
    assert table["bbox"].is_null().to_pylist() == frame.geometry.isna().tolist()
    validate(out)


def test_one_layer_formats_refuse_several_layers(published_lake, tmp_path, capsys):
    argv = ["--lake", str(published_lake), *RANGE, "--format", "fgb", "--layer", "fields", "--layer", "late_fields"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "-o", str(tmp_path / "x.fgb")])
    assert stop.value.code == 2
    assert "one layer per file" in capsys.readouterr().err
