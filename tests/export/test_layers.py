"""export/layers.py: lake columns as GDAL writes them. Polygon WKB becomes one-part MultiPolygon WKB that
GEOS reads as the same shape, in either byte order."""

from __future__ import annotations

import pyarrow as pa
import shapely

from geospatial_pipeline.export.layers import gdal_geometry_type, promote_polygons

SHAPES = shapely.from_wkt(
    [
        "POLYGON ((0 0, 1 0, 1 1, 0 0))",
        "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 1 2, 2 2, 2 1, 1 1))",
        "MULTIPOLYGON (((10 10, 12 10, 12 12, 10 10)))",
        "POINT (1 2)",
    ]
)


def wkb_column(byte_order: int) -> pa.Array:
    return pa.array([*shapely.to_wkb(SHAPES, byte_order=byte_order).tolist(), None], pa.binary())


def test_polygons_become_multipolygons_of_one_part_in_either_byte_order():
    for byte_order in (0, 1):
        promoted = shapely.from_wkb(promote_polygons(wkb_column(byte_order)).to_pylist())
        assert [g.geom_type if g is not None else None for g in promoted] == [
            "MultiPolygon",
            "MultiPolygon",
            "MultiPolygon",
            "Point",
            None,
        ]
        assert shapely.equals(promoted[:4], SHAPES).all()
        assert [len(g.geoms) for g in promoted[:3]] == [1, 1, 1]


def test_a_layer_is_multipolygon_only_when_every_geometry_is_polygonal():
    assert gdal_geometry_type({"Polygon", "MultiPolygon"}) == "MultiPolygon"
    assert gdal_geometry_type({"Polygon", "Point"}) == "Unknown"
