"""The fast paths give the answers of the paths they shortcut: pydantic for properties, GEOS for geometry.

Plain polygons are decoded straight into arrays and checked, measured and written from them; properties of
the common shape are checked as Arrow columns. Each must agree with the general path record by record:
same reasons and messages, same WKB bytes, same bounds, same GeoJSON values, measures within 1e-9.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import orjson
import pytest
import shapely
from pyproj import Geod

from geospatial_pipeline.core.partition import property_columns
from geospatial_pipeline.core.reading import RawChunk, parse_chunk
from geospatial_pipeline.core.records import validate_properties
from geospatial_pipeline.core.spatial import (
    SpatialRules,
    check_geometries,
    check_parsed_geometries,
    flatten_polygons,
    geodesic_area_perimeter,
)

GEOD = Geod(ellps="WGS84")


def box(lon, lat, d=0.01):
    return [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]


HOLE = box(10.002, 50.002, 0.001)
GEOMETRIES = [
    {"type": "Polygon", "coordinates": [box(10, 50)]},
    {"type": "Polygon", "coordinates": [box(10, 50)[::-1]]},
    {"type": "Polygon", "coordinates": [box(10, 50), HOLE]},
    {"type": "Polygon", "coordinates": [box(10, 50)[::-1], HOLE[::-1]]},
    {"type": "MultiPolygon", "coordinates": [[box(10, 50)], [box(11, 50)]]},
    {"type": "MultiPolygon", "coordinates": [[box(10, 50), HOLE], [box(11, 50)[::-1]]]},
    {"type": "MultiPolygon", "coordinates": []},
    {"type": "MultiPolygon", "coordinates": [[]]},
    {"type": "MultiPolygon", "coordinates": [[[]]]},
    {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [[]]},
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10, 50]]]},  # too few positions
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1]]]},  # not closed
    {"type": "Polygon", "coordinates": [[[10, 50, 1], [10.1, 50, 1], [10.1, 50.1, 1], [10, 50, 1]]]},
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50, 3], [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1], [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, "50"], [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, True], [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},  # 0 and 1 but no booleans
    {"type": "Polygon", "coordinates": [[[10, 50], [10.1, None], [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [[[10, 50], {"a": 1, "b": 2}, [10.1, 50.1], [10, 50]]]},
    {"type": "Polygon", "coordinates": [["ab", "cd", "ef", "ab"]]},
    {"type": "Polygon", "coordinates": ["abcd"]},
    {"type": "Polygon", "coordinates": [12]},
    {"type": "Polygon", "coordinates": [[[12, 49], [12.01, 49.01], [12.01, 49], [12, 49.01], [12, 49]]]},  # bow-tie
    {"type": "Polygon", "coordinates": [box(500000, 5316000, 200)]},
    {
        "type": "Polygon",
        "coordinates": [[[179.99, 10], [-179.99, 10], [-179.99, 10.01], [179.99, 10.01], [179.99, 10]]],
    },
    {"type": "Polygon", "coordinates": [[[10, 50], [10, 50], [10, 50], [10, 50]]]},
    {"type": "Polygon", "coordinates": [box(0.00001, 0.00002, 0.00001)]},  # numbers GEOS writes with exponents
    {"type": "Point", "coordinates": [10, 50]},
    {"type": "Polygon"},
    {"type": "Polygon", "coordinates": [box(-47.9, -15.8)]},
    {"type": "Polygon", "coordinates": [box(-35.3, 149.1)]},
    None,
]
CRS = ["EPSG:4326", "EPSG:32633", "EPSG:3035", "OGC:CRS84", "EPSG:999999"]
RULES = [
    SpatialRules(bounds=(-25.0, 34.0, 45.0, 72.0)),
    SpatialRules(target_crs="EPSG:3035", repair_invalid=True, max_vertices=12),
    SpatialRules(allowed_types=("MultiPolygon",)),
]


def geometry_chunk():
    texts, crs = [], []
    for g in GEOMETRIES:
        for c in CRS:
            props = {
                "field_id": f"f{len(texts)}",
                "arrival_time": "2025-01-02T05:00:00Z",
                "processing_date": "2025-01-02",
            }
            texts.append(json.dumps({"type": "Feature", "geometry": g, "properties": props | {"crs": c}}).encode())
            crs.append(c)
    chunk = RawChunk("raw/x.geojsonl", texts=texts, lines=list(range(1, len(texts) + 1)))
    return chunk, np.array(crs, dtype=object)


@pytest.mark.parametrize("rules", RULES)
def test_array_lane_matches_the_geos_lane(rules):
    chunk, crs = geometry_chunk()
    fast = parse_chunk(chunk)
    general = parse_chunk(chunk, flatten=False)
    assert fast.polygons is not None and len(fast.polygons) >= 60
    assert fast.reasons == general.reasons
    skip = np.zeros(len(chunk.texts), dtype=bool)
    skip[list(general.reasons)] = True
    a = check_parsed_geometries(fast.geometries, fast.polygons, crs, skip, rules)
    b = check_geometries(general.geometries, crs, skip, rules)
    assert a.reasons == b.reasons
    ok = np.array([i not in b.reasons and not skip[i] for i in range(len(crs))])
    rows = np.flatnonzero(ok)
    assert len(rows) >= 3
    assert a.wkb_of(rows).to_pylist() == b.wkb_of(rows).to_pylist()
    np.testing.assert_array_equal(a.bounds_of(rows), b.bounds_of(rows))
    assert [orjson.loads(t) for t in a.geojson_of(rows)] == [orjson.loads(t) for t in b.geojson_of(rows)]
    assert list(a.source_crs[rows]) == list(b.source_crs[rows])
    np.testing.assert_array_equal(a.repaired[rows], b.repaired[rows])
    np.testing.assert_allclose(a.area_ha[rows], b.area_ha[rows], rtol=1e-9)
    np.testing.assert_allclose(a.perimeter_m[rows], b.perimeter_m[rows], rtol=1e-8)


def test_not_plain_geometries_fall_back_one_by_one():
    items = [(i, g["type"] == "MultiPolygon", g["coordinates"]) for i, g in enumerate(GEOMETRIES[:24])]
    ragged, bad = flatten_polygons(items)
    assert sorted(ragged.index.tolist() + bad) == list(range(24))
    assert set(bad) == set(range(6, 18)) | {19, 20, 21, 22, 23}


def test_measures_agree_with_pyproj_geod():
    rng = np.random.default_rng(3)
    shapes = []
    for _ in range(200):
        lon, lat = rng.uniform(-170, 170), rng.uniform(-80, 80)
        k = int(rng.integers(5, 40))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(0.0005, 0.01) * rng.uniform(0.6, 1.0, k)  # field-sized: up to about a kilometre
        ring = np.column_stack([lon + r * np.cos(angles), lat + r * np.sin(angles)])
        shapes.append(shapely.orient_polygons(shapely.Polygon(ring), exterior_cw=False))
    shapes = np.array(shapes, dtype=object)
    area, perimeter = geodesic_area_perimeter(shapes)
    expected = np.array([GEOD.geometry_area_perimeter(s) for s in shapes])
    np.testing.assert_allclose(perimeter, expected[:, 1], rtol=1e-9)
    # The geodesic polygon's area, as GeographicLib computes it (these fields are large enough for Geod's own
    # rounding, about 1e-5 m², not to count).
    np.testing.assert_allclose(area, np.abs(expected[:, 0]), rtol=1e-7)


GOOD = {"field_id": "F-1", "arrival_time": "2025-01-02T05:00:00Z", "processing_date": "2025-01-02"}
PROPERTY_VARIANTS = [
    {},
    {"field_id": "a/b"},
    {"field_id": "."},
    {"field_id": ".."},
    {"field_id": " x"},
    {"field_id": "x "},
    {"field_id": ""},
    {"field_id": "x" * 128},
    {"field_id": "x" * 129},
    {"field_id": "é" * 100},
    {"field_id": "é" * 101},
    {"field_id": 5},
    {"field_id": "a\\b"},
    {"field_id": "a\tb"},
    {"field_id": "a\u2028b"},
    {"field_id": "ok-1_2.3:4+5~!"},
    {"field_id": None},
    {"arrival_time": "2025-01-02T10:00:00"},
    {"arrival_time": "2025-01-02T10:00:00.5Z"},
    {"arrival_time": "2025-01-02T10:00:00.123456+02:00"},
    {"arrival_time": "2025-01-02T10:00:00.1234567Z"},
    {"arrival_time": "2025-01-02 10:00:00Z"},
    {"arrival_time": "2025-01-02"},
    {"arrival_time": "2025-02-30T10:00:00Z"},
    {"arrival_time": "1700000000"},
    {"arrival_time": 1700000000},
    {"arrival_time": "2025-01-02T24:00:00Z"},
    {"arrival_time": "2025-01-02T10:00:00z"},
    {"arrival_time": "2025-01-02T10:00Z"},
    {"arrival_time": "2025-01-02T10:00:00-23:59"},
    {"arrival_time": "0001-01-01T00:00:00+01:00"},
    {"arrival_time": "9999-12-31T23:00:00-05:00"},
    {"processing_date": "2025-01-01"},
    {"processing_date": "2025-01-02T10:00:00+05:00"},
    {"processing_date": "2025-01-02T01:00:00+05:00"},
    {"processing_date": "2025-W01-4"},
    {"processing_date": "20250102"},
    {"processing_date": "2025-02-30"},
    {"processing_date": 20250102},
    {"processing_date": None},
    {"crs": None},
    {"crs": ""},
    {"crs": 5},
    {"crs": "x" * 513},
    {"crs": "EPSG:32633"},
    {"data": None},
    {"data": [1]},
    {"data": "x"},
    {"data": {"b": 1, "a": {"z": [1, 2, {"y": None}]}}},
    {"data": {}},
    {"extra": 1},
]


def test_property_columns_match_pydantic():
    items = [GOOD | v for v in PROPERTY_VARIANTS] + [{"data": {}}, {}]
    rows = np.ones(len(items), dtype=bool)
    got = property_columns(items, rows)
    models, problems = validate_properties(items)
    assert got.problems == problems
    for i, model in enumerate(models):
        assert got.valid[i] == (model is not None), items[i]
        if model is None:
            continue
        assert got.field_id[i].as_py() == model.field_id
        assert got.intended[i] == np.datetime64(model.processing_date, "D")
        assert got.arrival[i] == np.datetime64(model.arrival_time.replace(tzinfo=None), "us")
        assert got.data[i].as_py() == orjson.dumps(model.data, option=orjson.OPT_SORT_KEYS)
    for i, item in enumerate(items):  # the CRS the geometry is read in, whether the properties are valid or not
        crs = item.get("crs")
        assert got.crs[i] == (crs if isinstance(crs, str) and crs else None), item


def test_property_columns_leave_lenient_records_to_pydantic():
    items = [GOOD | {"data": {"x": float("nan")}}, GOOD]
    got = property_columns(items, np.ones(2, dtype=bool), lenient=[0])
    assert not got.valid[0] and got.problems[0][0][0].value == "data_not_object"
    assert got.valid[1] and got.arrival[1] == np.datetime64(dt.datetime(2025, 1, 2, 5), "us")


def test_hilbert_curve_visits_every_cell_once_and_neighbours_are_adjacent():
    from geospatial_pipeline.lake import writers

    order = writers._HILBERT_ORDER
    x, y = np.meshgrid(np.arange(1 << order, dtype=np.int64)[:64], np.arange(64, dtype=np.int64))
    d = writers._hilbert(x.ravel(), y.ravel())
    # The 64 x 64 corner of the curve is the curve of order 6: cells 0..4095, consecutive ones touch.
    assert sorted(d.tolist()) == list(range(64 * 64))
    path = np.column_stack([x.ravel(), y.ravel()])[np.argsort(d)]
    assert (np.abs(np.diff(path, axis=0)).sum(axis=1) == 1).all()


def test_spatial_groups_are_compact_and_full():
    from geospatial_pipeline.lake.writers import spatial_groups

    rng = np.random.default_rng(5)
    points = rng.uniform([5, 45], [24, 55], size=(10_000, 2))
    groups = spatial_groups(points, 1_000)
    assert np.bincount(groups).tolist() == [1_000] * 10
    spans = [np.ptp(points[groups == g], axis=0).prod() for g in range(10)]
    assert max(spans) < 0.5 * np.ptp(points, axis=0).prod()  # each group covers a part of the extent


def test_grouped_geoparquet_holds_the_same_rows_in_spatial_row_groups(lake_dir, fixture_settings, monkeypatch):
    """Large partitions are cut into row groups by location; forced here with row groups of 4 rows."""
    import pyarrow.parquet as pq

    from geospatial_pipeline.lake import keys, writers
    from geospatial_pipeline.lake.publish import run_partition
    from geospatial_pipeline.lake.store import LocalStore

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
    monkeypatch.setattr(writers, "ROW_GROUP_ROWS", 4)
    grouped, parquet = publish("2025-01-01")
    assert plain.num_rows > 8 and grouped.num_rows == plain.num_rows
    assert sorted(grouped.to_pylist(), key=str) == sorted(plain.to_pylist(), key=str)
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert sizes[:-1] == [4] * (len(sizes) - 1) and 0 < sizes[-1] <= 4

    def bbox(table):
        return json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]["bbox"]

    assert bbox(grouped) == bbox(plain)
