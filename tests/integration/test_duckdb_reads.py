"""Analysts query the lake with DuckDB and its spatial extension: each partition's GeoParquet and the whole
hive-partitioned fields/ folder, locally and in S3 (moto's server on 127.0.0.1). Extensions are loaded
from the PyPI packages' own files with autoinstall and autoload off, so nothing is downloaded.

The lake is written by the pipeline: the fixture days, the grid, two generated days from the benchmark's
generator and, where ../shared has them, the 1,500 real parcels; invalid geometries are repaired, so
repaired rows are among those checked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import geopandas as gpd
import pytest
import shapely

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from tests.export import readme_snippets as snippets
from tests.export.lakes import (
    REAL_PARCELS,
    fixture_lake,
    generated_lake,
    grid_lake,
    real_parcels_lake,
    settings_for,
)
from tests.integration.lake_backends import BUCKET, PREFIX, backend

GENERATED_DAYS = [dt.date(2025, 4, 1), dt.date(2025, 4, 2)]
# A box over part of the generated fields (Central Europe), queried on the second generated day; its east
# edge is moved onto a field's centre, so that field is cut through (see box_through_a_field).
BOX = (10.0, 48.0, 14.0, 51.0)
# ST_Area_Spheroid (GeographicLib) against area_ha: relative, and absolute for parcels under ~100 m², where
# GeographicLib's own rounding is about 1e-5 m².
AREA_RELATIVE, AREA_ABSOLUTE_M2 = 1e-7, 1e-4


def extension(package: str) -> Path:
    module = pytest.importorskip(package)
    found = sorted(Path(module.__file__).parent.rglob("*.duckdb_extension"))
    if not found:
        pytest.skip(f"{package} ships no .duckdb_extension file")
    return found[0]


def connect(*packages: str) -> duckdb.DuckDBPyConnection:
    """DuckDB with extensions loaded from the packages' files: no autoinstall, no autoload, no download."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for package in ("duckdb_extension_spatial", *packages):
        con.execute(f"LOAD '{extension(package)}'")
    return con


def folder(root: str) -> str:
    """The fields/ folder as one hive-partitioned table (the partition column `date` typed as a DATE)."""
    return f"read_parquet('{root}/fields/*/fields.parquet', hive_partitioning = true, hive_types = {{'date': DATE}})"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("duckdb") / "lake"
    store, settings = LocalStore(root), settings_for(root)
    fixture_lake(store, settings)
    grid_lake(store, settings)
    generated_lake(store, settings, GENERATED_DAYS, 2_000, tmp_path_factory.mktemp("generated"))
    if REAL_PARCELS.exists():
        real_parcels_lake(store, settings)
    return root


def manifests(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "manifests").glob("*.json"))}


def test_each_partition_file_counts_and_validity(lake):
    con = connect()
    published = manifests(lake)
    assert len(published) >= 7
    for day, manifest in published.items():
        rows, valid = con.execute(
            f"SELECT count(*), count(*) FILTER (ST_IsValid(geometry)) FROM '{lake / keys.fields_key(day)}'"
        ).fetchone()
        assert rows == manifest["counts"]["published_rows"], day
        assert valid == rows, f"{day}: {rows - valid} invalid geometries"
    repaired = con.execute(f"SELECT count(*) FROM {folder(lake)} WHERE repaired").fetchone()[0]
    assert repaired > 0  # the repaired rows are among those found valid


def test_the_folder_is_one_hive_partitioned_table(lake):
    con = connect()
    counts = dict(con.execute(f"SELECT date, count(*) FROM {folder(lake)} GROUP BY date").fetchall())
    assert {d.isoformat(): n for d, n in counts.items()} == {
        day: m["counts"]["published_rows"] for day, m in manifests(lake).items() if m["counts"]["published_rows"]
    }
    assert con.execute(f"SELECT count(*) FROM {folder(lake)} WHERE date <> processing_date").fetchone() == (0,)


def test_area_matches_geographiclib_on_the_ellipsoid(lake):
    con = connect()
    # ST_Area_Spheroid reads (lat, lon): the GeoParquet's (lon, lat) flipped first.
    rows = con.execute(
        f"""
        SELECT date, field_id, source_crs, area_ha * 1e4 AS published_m2,
               ST_Area_Spheroid(ST_FlipCoordinates(geometry)) AS geographiclib_m2
        FROM {folder(lake)}
        """
    ).fetchall()
    assert len(rows) == sum(m["counts"]["published_rows"] for m in manifests(lake).values())
    off = [
        (abs(geo - pub) / geo, day, fid, crs, pub, geo)
        for day, fid, crs, pub, geo in rows
        if abs(geo - pub) > max(AREA_RELATIVE * geo, AREA_ABSOLUTE_M2)
    ]
    worst = sorted(off, reverse=True)[:5]
    assert not off, f"{len(off)} of {len(rows)} areas off by more than 1e-7 relative; worst: {worst}"


def box_through_a_field(lake: Path, day: dt.date) -> tuple[float, float, float, float]:
    """BOX with its east edge through the centre of the first field (by id) wholly inside BOX."""
    frame = gpd.read_parquet(lake / keys.fields_key(day)).sort_values("field_id")
    cut = frame[frame.within(shapely.box(*BOX))].geometry.iloc[0].centroid.x
    return (BOX[0], BOX[1], cut, BOX[3])


def expected_inside(lake: Path, day: dt.date, box: tuple[float, ...]) -> set[str]:
    """The fields of `day` inside `box`, found by geopandas/shapely rather than DuckDB."""
    frame = gpd.read_parquet(lake / keys.fields_key(day))
    return set(frame.loc[frame.within(shapely.box(*box)), "field_id"])


def inside_query(root: str, day: dt.date, box: tuple[float, ...]) -> str:
    xmin, ymin, xmax, ymax = box
    return f"""
        SELECT field_id FROM {folder(root)}
        WHERE date = DATE '{day}'
          AND bbox.xmin >= {xmin} AND bbox.ymin >= {ymin} AND bbox.xmax <= {xmax} AND bbox.ymax <= {ymax}
          AND ST_Within(geometry, ST_MakeEnvelope({xmin}, {ymin}, {xmax}, {ymax}))
    """


def test_a_date_and_bbox_query_over_the_folder_finds_exactly_the_fields_inside(lake):
    day = GENERATED_DAYS[1]
    box = box_through_a_field(lake, day)
    want = expected_inside(lake, day, box)
    everything = gpd.read_parquet(lake / keys.fields_key(day))
    across = everything.intersects(shapely.box(*box)) & ~everything.within(shapely.box(*box))
    assert 0 < len(want) < len(everything) and across.any()  # the box cuts through a field
    got = [row[0] for row in connect().execute(inside_query(str(lake), day, box)).fetchall()]
    assert len(got) == len(set(got)) and set(got) == want
    # Other days have fields in the box too: the partition filter is what keeps them out.
    any_day = inside_query(str(lake), day, box).replace(f"date = DATE '{day}'", "true")
    assert len(connect().execute(any_day).fetchall()) > len(got)


@pytest.mark.slow
def test_the_same_query_against_the_lake_in_s3(tmp_path, monkeypatch, lake):
    """DuckDB's httpfs (from its PyPI package) against moto's server: path-style URLs, plain HTTP."""
    con = connect("duckdb_extension_httpfs")
    with backend("moto_server", tmp_path, monkeypatch) as (overrides, store):
        settings = settings_for(**overrides)
        fixture_lake(store, settings)
        generated_lake(store, settings, GENERATED_DAYS[1:], 2_000, tmp_path / "generated")
        endpoint = overrides["s3_endpoint_url"].removeprefix("http://")
        con.execute(snippets.DUCKDB_S3.replace("127.0.0.1:9000", endpoint))  # the README's secret
        root = f"s3://{BUCKET}/{PREFIX}"
        counts = dict(con.execute(f"SELECT date, count(*) FROM {folder(root)} GROUP BY date").fetchall())
        published = {day.isoformat(): n for day, n in counts.items()}
        for day, n in published.items():
            manifest = json.loads(store.get_bytes(keys.manifest_key(day)))
            assert n == manifest["counts"]["published_rows"], day
        assert set(published) == {*[d for d in ("2025-01-01", "2025-01-02", "2025-01-03")], "2025-04-02"}
        box = box_through_a_field(lake, GENERATED_DAYS[1])
        got = {row[0] for row in con.execute(inside_query(root, GENERATED_DAYS[1], box)).fetchall()}
    # The same seed and day as in the local lake: the same fields inside the box.
    assert got == expected_inside(lake, GENERATED_DAYS[1], box) and got
