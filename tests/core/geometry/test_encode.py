"""The published encodings are the standard ones: WKB byte for byte as shapely writes it, bounds as GEOS
computes them, GeoJSON that reads back to the same geometry."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.geometry import encode
from geospatial_pipeline.core.geometry.shapes import from_shapely
from tests.core.geometry.test_read import geometries


@settings(max_examples=300, deadline=None)
@given(st.lists(geometries, min_size=1, max_size=8))
def test_wkb_bounds_and_geojson_are_shapely_s(items):
    objects = np.array([shapely.geometry.shape(g) for g in items], dtype=object)
    shapes = from_shapely(objects, np.arange(len(objects)))
    assert encode.wkb(shapes).to_pylist() == list(shapely.to_wkb(objects, output_dimension=2))
    # GEOS bounds a polygon by its shell; for the valid geometries that are published (holes inside their
    # shell) that is the box of every vertex, which is what encode.bounds computes.
    valid = shapely.is_valid(objects)
    np.testing.assert_array_equal(encode.bounds(shapes)[valid], shapely.bounds(objects[valid]))
    back = shapely.from_geojson(np.array(encode.geojson(shapes), dtype=object))
    assert all(shapely.equals_exact(a, b, tolerance=0) for a, b in zip(back, objects, strict=True))
