"""Geometries read from the scan are the ones GEOS reads from the same text, of every type; what GEOS
refuses to read is refused too, with the reason code for it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.reasons import Reason
from tests.core.geometry.support import parsed

coordinate = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
point = st.tuples(coordinate, coordinate)


def ring(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [*points, points[0]]


geometries = st.one_of(
    point.map(lambda p: {"type": "Point", "coordinates": p}),
    st.lists(point, min_size=2, max_size=6).map(lambda c: {"type": "LineString", "coordinates": c}),
    st.lists(point, min_size=1, max_size=6).map(lambda c: {"type": "MultiPoint", "coordinates": c}),
    st.lists(st.lists(point, min_size=3, max_size=6).map(ring), min_size=1, max_size=3).map(
        lambda rings: {"type": "Polygon", "coordinates": rings}
    ),
    st.lists(st.lists(point, min_size=2, max_size=5), min_size=1, max_size=3).map(
        lambda lines: {"type": "MultiLineString", "coordinates": lines}
    ),
    st.lists(
        st.lists(st.lists(point, min_size=3, max_size=5).map(ring), min_size=1, max_size=2), min_size=1, max_size=3
    ).map(lambda polygons: {"type": "MultiPolygon", "coordinates": polygons}),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(geometries, min_size=1, max_size=8))
def test_every_type_reads_as_geos_reads_it(items):
    chunk = parsed([(g, None) for g in items])
    assert chunk.problems == {}
    ours = chunk.shapes.to_shapely()
    for i, geometry in enumerate(items):
        expected = shapely.from_geojson(json.dumps(geometry))
        assert chunk.shapes.index[i] == i
        assert ours[i].geom_type == expected.geom_type
        assert shapely.equals_exact(ours[i], expected, tolerance=0), (ours[i].wkt, expected.wkt)


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        (None, Reason.GEOMETRY_MISSING),
        ([[1, 2]], Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon"}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Hexagon", "coordinates": [1, 2]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1]]]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "LineString", "coordinates": [[0, 0]]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Point", "coordinates": [1]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon", "coordinates": [[0, 0], [1, 1]]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon", "coordinates": [[["0", 0]]]}, Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Point", "coordinates": [float("nan"), 1]}, Reason.GEOMETRY_NON_FINITE),
        ({"type": "GeometryCollection", "geometries": []}, Reason.GEOMETRY_TYPE_NOT_ALLOWED),
    ],
)
def test_what_geos_would_not_read_is_refused_with_its_reason(geometry, reason):
    chunk = parsed([(geometry, None), ({"type": "Point", "coordinates": [1, 2]}, None)])
    assert [r for r, _ in chunk.problems[0]] == [reason]
    assert 1 not in chunk.problems and chunk.shapes.index.tolist() == [1]  # its neighbour is untouched


def test_three_numbers_to_a_position_are_read_and_flagged():
    chunk = parsed([({"type": "Polygon", "coordinates": [[[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 0, 5]]]}, None)])
    assert chunk.problems == {} and chunk.has_z.tolist() == [True]
    assert np.array_equal(chunk.shapes.coords, [[0, 0], [1, 0], [1, 1], [0, 0]])
