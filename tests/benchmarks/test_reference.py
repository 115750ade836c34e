"""The per-record reference (the seed's loop) runs on every batch: other CRSs reprojected, full-precision
numbers, offsets and full datetimes read, bad values refused, so the speed-up it anchors is like for like."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
import shapely

from benchmarks import generate_real, generate_varied
from benchmarks.baselines import per_record_reference
from benchmarks.generate import PARTITION

PARCELS, WHY = generate_real.parcels_file()
# The seed's loop reprojects with shapely.ops.transform, deprecated in shapely 2.2; it stays as the seed had it.
pytestmark = pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")


def run_reference(source, tmp_path):
    out = tmp_path / "reference.parquet"
    records = per_record_reference(source, out, PARTITION, dt.timedelta(days=1))
    return records, pq.read_table(out)


def lonlat_bounds(table) -> tuple[float, float, float, float]:
    geometries = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    return tuple(shapely.total_bounds(geometries))


def test_reference_reads_the_spelling_varied_batch(tmp_path):
    source = generate_varied.generate(tmp_path / "v.geojsonl", 1_000, seed=11, workers=1)
    records, table = run_reference(source, tmp_path)
    assert records == 1_000
    # bow-ties (2%) and the ten bad values refused, nothing else
    assert 950 < table.num_rows <= 990
    assert {"EPSG:32633", "urn:ogc:def:crs:EPSG::32633", "urn:ogc:def:crs:OGC:1.3:CRS84"} <= set(
        table["source_crs"].to_pylist()
    )
    min_lon, min_lat, max_lon, max_lat = lonlat_bounds(table)
    assert 4.9 < min_lon < max_lon < 24.2 and 45.4 < min_lat < max_lat < 54.6  # UTM brought back to degrees
    assert {d.date() if isinstance(d, dt.datetime) else d for d in table["processing_date"].to_pylist()} == {
        PARTITION,
        PARTITION - dt.timedelta(days=1),
    }
    assert 0.07 < sum(table["arrived_late"].to_pylist()) / table.num_rows < 0.13


@pytest.mark.skipif(PARCELS is None, reason=f"real parcels absent: {WHY}")
def test_reference_reprojects_every_real_parcels_crs(tmp_path):
    source = generate_real.generate(tmp_path / "r.geojsonl", 1_500, seed=2)
    records, table = run_reference(source, tmp_path)
    assert records == 1_500
    assert table.num_rows > 1_450  # the few published invalid parcels refused
    assert len(set(table["source_crs"].to_pylist())) == 13  # 12 declared CRSs, and lon/lat without one
    min_lon, min_lat, max_lon, max_lat = lonlat_bounds(table)
    assert -180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90
    assert min(table["area_ha"].to_pylist()) > 0
