"""The GeoParquet writer: row groups, `geo` metadata, atomic publication, and the Hilbert grouping of large
partitions. Files are read back with pyarrow and geopandas, as users read them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely

from geospatial_pipeline.lake import geoparquet, keys
from geospatial_pipeline.lake.geoparquet import write_geoparquet
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import run_partition
from geospatial_pipeline.settings import PipelineSettings


@pytest.fixture
def published_rows(lake_dir: Path, fixture_settings: PipelineSettings) -> pa.Table:
    """Real rows of the published schema: day 1 of the fixtures, published by the pipeline."""
    store = LocalStore(lake_dir)
    run_partition(store, dt.date(2025, 1, 1), fixture_settings.rules(), target_crs="EPSG:4326")
    return pq.read_table(lake_dir / keys.fields_key("2025-01-01"))


def test_geoparquet_rows_stream_into_full_row_groups_with_metadata_of_all_of_them(
    published_rows: pa.Table, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(geoparquet, "ROW_GROUP_ROWS", 3)
    store = LocalStore(tmp_path / "out")
    tables = [published_rows.slice(0, 2), published_rows.slice(2, 0), published_rows.slice(2)]
    info, meta, rows = write_geoparquet(store, "x/fields.parquet", tables, "EPSG:4326", tmp_path)

    path = tmp_path / "out" / "x" / "fields.parquet"
    parquet = pq.ParquetFile(path)
    n = published_rows.num_rows
    assert rows == n == parquet.metadata.num_rows and info.size == path.stat().st_size
    assert [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)] == [3] * (n // 3) + (
        [n % 3] if n % 3 else []
    )
    assert json.loads(parquet.schema_arrow.metadata[b"geo"]) == meta
    bbox = published_rows["bbox"].combine_chunks()
    assert meta["columns"]["geometry"]["bbox"] == [
        pc.min(bbox.field("xmin")).as_py(),
        pc.min(bbox.field("ymin")).as_py(),
        pc.max(bbox.field("xmax")).as_py(),
        pc.max(bbox.field("ymax")).as_py(),
    ]
    frame = gpd.read_parquet(path)
    assert sorted(set(frame.geom_type)) == meta["columns"]["geometry"]["geometry_types"]
    assert list(frame["field_id"]) == published_rows["field_id"].to_pylist()
    assert not list((tmp_path).glob("*.parquet"))  # the scratch file became the object


def test_a_geoparquet_that_fails_midway_publishes_nothing_and_leaves_no_scratch(
    published_rows: pa.Table, tmp_path: Path
):
    def tables():
        yield published_rows
        raise RuntimeError("the source broke off")

    store = LocalStore(tmp_path / "out")
    with pytest.raises(RuntimeError, match="broke off"):
        write_geoparquet(store, "x/fields.parquet", tables(), "EPSG:4326", tmp_path)
    assert store.head("x/fields.parquet") is None
    assert not list(tmp_path.glob("*.parquet"))


def test_an_empty_geoparquet_is_valid_and_has_no_bbox(published_rows: pa.Table, tmp_path: Path):
    store = LocalStore(tmp_path / "out")
    _, meta, rows = write_geoparquet(store, "x/fields.parquet", [], "EPSG:4326", tmp_path)
    assert rows == 0 and "bbox" not in meta["columns"]["geometry"]
    assert meta["columns"]["geometry"]["geometry_types"] == []
    assert len(gpd.read_parquet(tmp_path / "out" / "x" / "fields.parquet")) == 0


# --- manifest --------------------------------------------------------------------------------------------


def test_hilbert_curve_visits_every_cell_once_and_neighbours_are_adjacent():
    order = geoparquet._HILBERT_ORDER
    x, y = np.meshgrid(np.arange(1 << order, dtype=np.int64)[:64], np.arange(64, dtype=np.int64))
    d = geoparquet._hilbert(x.ravel(), y.ravel())
    # The 64 x 64 corner of the curve is the curve of order 6: cells 0..4095, consecutive ones touch.
    assert sorted(d.tolist()) == list(range(64 * 64))
    path = np.column_stack([x.ravel(), y.ravel()])[np.argsort(d)]
    assert (np.abs(np.diff(path, axis=0)).sum(axis=1) == 1).all()


def test_spatial_groups_are_compact_and_full():
    rng = np.random.default_rng(5)
    points = rng.uniform([5, 45], [24, 55], size=(10_000, 2))
    groups = geoparquet.spatial_groups(points, 1_000)
    assert np.bincount(groups).tolist() == [1_000] * 10
    spans = [np.ptp(points[groups == g], axis=0).prod() for g in range(10)]
    assert max(spans) < 0.5 * np.ptp(points, axis=0).prod()  # each group covers a part of the extent


def test_grouped_geoparquet_holds_the_same_rows_in_spatial_row_groups(lake_dir, fixture_settings, monkeypatch):
    """Large partitions are cut into row groups by location; forced here with row groups of 4 rows."""
    store = LocalStore(lake_dir)

    def publish(date):
        run_partition(
            store,
            dt.date.fromisoformat(date),
            fixture_settings.rules(),
            target_crs=fixture_settings.target_crs,
            limits=fixture_settings.limits(),
            now=dt.datetime(2025, 1, 4, 12, tzinfo=dt.UTC),
        )
        return pq.read_table(store.open(keys.fields_key(date))), pq.ParquetFile(store.open(keys.fields_key(date)))

    publish("2025-01-02")  # detects late fields for 2025-01-01, merged into it below
    plain, _ = publish("2025-01-01")
    monkeypatch.setattr(geoparquet, "ROW_GROUP_ROWS", 4)
    grouped, parquet = publish("2025-01-01")
    assert plain.num_rows > 8 and grouped.num_rows == plain.num_rows
    assert sorted(grouped.to_pylist(), key=str) == sorted(plain.to_pylist(), key=str)
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert sizes[:-1] == [4] * (len(sizes) - 1) and 0 < sizes[-1] <= 4

    def bbox(table):
        return json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]["bbox"]

    assert bbox(grouped) == bbox(plain)


def test_geometry_types_are_read_from_the_wkb_headers_in_either_byte_order():
    wkt = ["POLYGON ((0 0, 1 0, 1 1, 0 0))", "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))", "POINT (1 2)"]
    shapes = shapely.from_wkt(wkt)
    for byte_order in (0, 1):
        column = pa.array([*shapely.to_wkb(shapes, byte_order=byte_order).tolist(), None], pa.binary())
        assert geoparquet.wkb_types(column) == {"Polygon", "MultiPolygon", "Point"}
        assert geoparquet.wkb_types(pa.chunked_array([column.slice(0, 1)])) == {"Polygon"}
