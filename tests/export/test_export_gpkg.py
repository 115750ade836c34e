"""The GeoPackage export of the fixture days, read back with GDAL (pyogrio, as QGIS reads it) and compared
with what the pipeline published: every row, column and geometry of `fields` and `late_fields`, every
quarantine line in `rejected_records`, and one default style per layer in `layer_styles`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from geospatial_pipeline.core.schema import FIELD_SCHEMA
from geospatial_pipeline.export.cli import main
from geospatial_pipeline.export.styles import qml
from geospatial_pipeline.lake import keys
from tests.conftest import FIXTURE_DATES

LAYER_NAMES = ["fields", "late_fields", "rejected_records"]


@pytest.fixture(scope="module")
def exported(published_lake, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpkg") / "fixture-days.gpkg"
    argv = ["--lake", str(published_lake), "--from", FIXTURE_DATES[0], "--to", FIXTURE_DATES[-1], "--output", str(out)]
    assert main(argv) == 0
    return out


def manifests(lake: Path) -> dict[str, dict]:
    return {day: json.loads((lake / keys.manifest_key(day)).read_text()) for day in FIXTURE_DATES}


def as_multi(geometry):
    return MultiPolygon([geometry]) if isinstance(geometry, Polygon) else geometry


def lake_frame(paths: list[Path]) -> gpd.GeoDataFrame:
    frame = pd.concat([gpd.read_parquet(path) for path in paths], ignore_index=True)
    frame["bbox"] = [b for path in paths for b in pq.read_table(path, columns=["bbox"])["bbox"].to_pylist()]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def assert_same_rows(exported: gpd.GeoDataFrame, published: gpd.GeoDataFrame) -> None:
    """Every published column and value, in the same order; geometries exactly (polygons as one-part
    multipolygons); bbox as four columns."""
    assert len(exported) == len(published) > 0
    assert exported.crs.to_epsg() == 4326
    for name in FIELD_SCHEMA.names:
        if name == "geometry":
            want = [as_multi(g) for g in published.geometry]
            assert all(shapely.equals_exact(a, b, 0) for a, b in zip(exported.geometry, want, strict=True))
            assert set(exported.geometry.geom_type) == {"MultiPolygon"}
        elif name == "bbox":
            for part in ("xmin", "ymin", "xmax", "ymax"):
                assert exported[f"bbox_{part}"].tolist() == [b[part] for b in published["bbox"]]
        elif name in ("processing_date", "detected_in"):
            assert [d.date() for d in exported[name]] == list(published[name]), name
        elif name == "arrival_time":  # GDAL keeps milliseconds: 00:00:00.000001 (late by 1 µs) reads .000
            assert ((exported[name] - published[name]).abs() < pd.Timedelta(milliseconds=1)).all()
        else:
            assert exported[name].tolist() == published[name].tolist(), name


def test_the_file_has_the_three_layers_and_their_styles_table(exported):
    layers = dict(pyogrio.list_layers(exported).tolist())
    assert layers == {
        "fields": "MultiPolygon",
        "late_fields": "MultiPolygon",
        "rejected_records": "Unknown",
        "layer_styles": None,
    }


def test_fields_layer_is_every_published_row_of_every_day(exported, published_lake):
    frame = pyogrio.read_dataframe(exported, layer="fields")
    published = lake_frame([published_lake / keys.fields_key(day) for day in FIXTURE_DATES])
    assert len(frame) == sum(m["counts"]["published_rows"] for m in manifests(published_lake).values())
    assert_same_rows(frame, published)
    # Late fields merged in are there and marked, and the repaired bow-tie is.
    assert set(frame.loc[frame.arrived_late, "field_id"]) >= {"F-001", "F-101", "F-102", "G-101"}
    assert frame.loc[frame.repaired, "field_id"].tolist() == ["F-006"]


def test_late_fields_layer_is_every_late_batch_of_the_range(exported, published_lake):
    batches = sorted(p for day in FIXTURE_DATES for p in (published_lake / keys.late_batches_prefix(day)).glob("*"))
    # (intended date, detecting run): 01-01 from runs 01-01, 01-02 and 01-03; 01-02 from run 01-03.
    assert [(p.parent.name, p.stem) for p in batches] == [
        ("2025-01-01", "2025-01-01"),
        ("2025-01-01", "2025-01-02"),
        ("2025-01-01", "2025-01-03"),
        ("2025-01-02", "2025-01-03"),
    ]
    frame = pyogrio.read_dataframe(exported, layer="late_fields")
    assert_same_rows(frame, lake_frame(batches))
    assert frame.arrived_late.all()


def test_rejected_records_layer_is_every_quarantine_line(exported, published_lake):
    frame = pyogrio.read_dataframe(exported, layer="rejected_records")
    lines = [
        (day, orjson.loads(line)["properties"])
        for day in FIXTURE_DATES
        for line in (published_lake / keys.rejected_key(day)).read_bytes().splitlines()
    ]
    assert len(frame) == len(lines) == sum(m["counts"]["rejected"] for m in manifests(published_lake).values())
    assert [d.date().isoformat() for d in frame.partition_date] == [day for day, _ in lines]
    assert frame.source_key.tolist() == [p["source_key"] for _, p in lines]
    assert frame.source_line.tolist() == [p["source_line"] for _, p in lines]
    assert frame.reason_codes.tolist() == [", ".join(p["reason_codes"]) for _, p in lines]
    assert frame.raw.tolist() == [p["raw"] for _, p in lines]
    assert [json.loads(r) for r in frame.reasons] == [p["reasons"] for _, p in lines]

    by_line = frame.set_index(["source_key", "source_line"])
    day1 = "raw/2025-01-01/fields.geojsonl"

    def geometry(line: int, key: str = day1):
        return by_line.loc[(key, line), "geometry"]

    def same(a, b) -> bool:
        return shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=1e-12)

    # Where the geometry parsed it is on the map, as the record gave it.
    assert same(geometry(7), shapely.box(-47.9, -15.8, -47.89, -15.79))  # outside the configured bounds
    assert same(geometry(11), Point(10.0, 50.0))  # a point where polygons are allowed
    assert same(geometry(2, "raw/2025-01-03/fields.ndjson"), Polygon([(14.1, 46), (14.11, 46), (14.11, 46.01)]))
    # Where it did not (unknown CRS, empty, NaN, malformed JSON) or lies off the globe, the row stays without.
    for line in (8, 9, 10, 12, 13, 17):
        assert geometry(line) is None, line
    assert by_line.loc[(day1, 11), "field_id"] == "F-011"


def test_each_layer_has_a_default_style_as_qgis_stores_it(exported):
    styles = pyogrio.read_dataframe(exported, layer="layer_styles")
    assert styles.f_table_name.tolist() == LAYER_NAMES
    assert (styles.f_geometry_column == "geom").all() and (styles.f_table_schema == "").all()
    assert styles.useAsDefault.tolist() == [True, True, True]
    assert styles.styleQML.tolist() == [qml(name) for name in LAYER_NAMES]
    with sqlite3.connect(exported) as db:
        # QGIS finds the table through GDAL, which lists registered tables only; the geometry column it
        # keys styles by is the one GDAL wrote.
        assert db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone() == (
            "attributes",
        )
        columns = {row[0]: row[1] for row in db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns")}
        assert columns == dict.fromkeys(LAYER_NAMES, "geom")
        assert db.execute("PRAGMA user_version").fetchone() == (10200,)  # GeoPackage 1.2, GDAL 3.6 reads it


def test_a_single_date_exports_that_partition_alone(published_lake, tmp_path):
    out = tmp_path / "one.gpkg"
    assert main(["--lake", str(published_lake), "--date", "2025-01-02", "-o", str(out), "--no-progress"]) == 0
    frame = pyogrio.read_dataframe(out, layer="fields")
    assert set(frame.processing_date.dt.date) == {dt.date(2025, 1, 2)}
    assert len(frame) == manifests(published_lake)["2025-01-02"]["counts"]["published_rows"]
    assert pyogrio.read_info(out, layer="late_fields")["features"] == 1  # G-101, detected 2025-01-03
