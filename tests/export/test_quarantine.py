"""Quarantine lines into rows of rejected_records: the geometry comes back from the raw record in its own
CRS, reprojected into the export's (checked against pyproj), and stays empty when it cannot."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pytest
import shapely
from pyproj import CRS, Transformer

from geospatial_pipeline.export.layers import REJECTED_SCHEMA
from geospatial_pipeline.export.quarantine import rejected_table

DAY = dt.date(2025, 1, 1)
UTM_RING = [[500000.0, 5316000.0], [500200.0, 5316000.0], [500200.0, 5316150.0], [500000.0, 5316000.0]]


def quarantine_line(record: bytes | dict, codes=("geometry_invalid",), line: int = 1) -> bytes:
    raw = record if isinstance(record, bytes) else orjson.dumps(record)
    props = {
        "source_key": "raw/2025-01-01/x.geojsonl",
        "source_line": line,
        "reason_codes": list(codes),
        "reasons": [{"code": c, "message": f"{c} here"} for c in codes],
        "raw": raw.decode(),
    }
    return orjson.dumps({"type": "Feature", "geometry": None, "properties": props})


def feature(geometry, **props) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"field_id": "X-1", **props}}


def test_a_projected_record_is_reprojected_into_the_export_crs():
    utm = feature({"type": "Polygon", "coordinates": [UTM_RING]}, crs="EPSG:32633")
    table = rejected_table([quarantine_line(utm, ("arrival_in_future", "geometry_invalid"))], DAY, CRS("EPSG:4326"))
    assert table.schema == REJECTED_SCHEMA
    row = table.to_pylist()[0]
    assert row["partition_date"] == DAY and row["field_id"] == "X-1"
    assert row["reason_codes"] == "arrival_in_future, geometry_invalid"
    assert [r["code"] for r in orjson.loads(row["reasons"])] == ["arrival_in_future", "geometry_invalid"]
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(*np.array(UTM_RING).T)
    got = shapely.get_coordinates(shapely.from_wkb(row["geometry"]))
    assert got == pytest.approx(np.column_stack([lon, lat]), abs=1e-12)
    assert [row["bbox"][k] for k in ("xmin", "ymin", "xmax", "ymax")] == pytest.approx(
        [lon.min(), lat.min(), lon.max(), lat.max()]
    )


def test_a_lon_lat_record_lands_in_a_projected_export_crs():
    lonlat = feature({"type": "Point", "coordinates": [15.0, 48.0]})
    row = rejected_table([quarantine_line(lonlat)], DAY, CRS("EPSG:3035")).to_pylist()[0]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True).transform(15.0, 48.0)
    assert shapely.from_wkb(row["geometry"]).coords[0] == pytest.approx((x, y), abs=1e-6)


@pytest.mark.parametrize(
    "record",
    [
        b"{not json",  # malformed_json
        orjson.dumps(["a", "list"]),  # not a Feature
        feature(None),  # geometry_missing
        feature({"type": "Polygon", "coordinates": []}),  # geometry_empty
        feature({"type": "Polygon", "coordinates": "nonsense"}),  # geometry_unparseable
        feature({"type": "Polygon", "coordinates": [UTM_RING]}, crs="EPSG:999999"),  # crs_unknown
        feature({"type": "Polygon", "coordinates": [UTM_RING]}),  # projected numbers read as degrees
        feature({"type": "Point", "coordinates": [-35.3, 149.1]}),  # lat/lon swapped: off the globe
    ],
)
def test_a_record_without_a_usable_geometry_keeps_its_row(record):
    table = rejected_table([quarantine_line(record)], DAY, CRS("EPSG:4326"))
    row = table.to_pylist()[0]
    assert row["geometry"] is None and row["bbox"] is None
    assert row["raw"] == (record if isinstance(record, bytes) else orjson.dumps(record)).decode()


def test_a_3d_geometry_is_kept_flat():
    flat = [[10.0, 50.0, 5.0], [10.01, 50.0, 5.0], [10.01, 50.01, 5.0], [10.0, 50.0, 5.0]]
    row = rejected_table([quarantine_line(feature({"type": "Polygon", "coordinates": [flat]}))], DAY, CRS("EPSG:4326"))
    geometry = shapely.from_wkb(row.to_pylist()[0]["geometry"])
    assert not geometry.has_z and geometry.equals(shapely.Polygon([p[:2] for p in flat]))


def test_a_line_that_is_not_a_quarantine_record_is_an_error():
    with pytest.raises(ValueError, match="line 2 of the chunk is not a quarantine record"):
        rejected_table(
            [quarantine_line(feature(None)), b'{"type": "Feature", "properties": {}}'], DAY, CRS("EPSG:4326")
        )
