"""The compiled ring loops. star_shaped lets a polygon skip GEOS's is_valid: it must never pass one GEOS
calls invalid, and it should pass the usual field boundary (else it saves nothing). oriented turns rings
the way GEOS's orient_polygons does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.geometry.kernels import oriented, star_shaped
from geospatial_pipeline.core.geometry.shapes import POLYGON, Shapes, from_shapely
from tests.core.geometry.support import run


def ragged(polygons: list[list[list[tuple[float, float]]]]) -> Shapes:
    """Polygons given as lists of rings (lists of (x, y), closed or not as given), one part each."""
    rings = [ring for polygon in polygons for ring in polygon]
    coords = np.array([xy for ring in rings for xy in ring], dtype=np.float64).reshape(-1, 2)
    ring_offsets = np.cumsum([0, *map(len, rings)])
    part_offsets = np.cumsum([0, *map(len, polygons)])
    n = len(polygons)
    return Shapes(
        np.arange(n), np.full(n, POLYGON, dtype=np.int8), coords, ring_offsets, part_offsets, np.arange(n + 1)
    )


def closed(points):
    return [*points, points[0]]


def around(cx, cy, radii, angles):
    return closed([(cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in zip(radii, angles, strict=True)])


def test_convex_and_star_outlines_pass_and_a_bow_tie_does_not():
    square = closed([(0, 0), (1, 0), (1, 1), (0, 1)])
    star = around(5, 5, [1, 0.4] * 5, [k * math.pi / 5 for k in range(10)])
    bow_tie = closed([(0, 0), (1, 1), (1, 0), (0, 1)])
    clockwise = square[::-1]
    assert star_shaped(ragged([[square], [star], [bow_tie], [clockwise]])).tolist() == [True, True, False, True]


def test_holes_unclosed_rings_and_a_vertex_on_the_centre_ask_geos():
    square = closed([(0, 0), (4, 0), (4, 4), (0, 4)])
    hole = closed([(1, 1), (1, 2), (2, 2), (2, 1)])
    unclosed = [(0, 0), (1, 0), (1, 1), (0, 1)]
    through_centre = closed([(-1, -1), (1, -1), (0, 0), (1, 1), (-1, 1), (0, 0)])  # mean is (0, 0)
    c_shape = closed([(0, 0), (3, 0), (3, 1), (1, 1), (1, 2), (3, 2), (3, 3), (0, 3)])  # valid, mean outside
    result = star_shaped(ragged([[square, hole], [unclosed], [through_centre], [c_shape]]))
    assert result.tolist() == [False, False, False, False]
    assert shapely.is_valid(shapely.Polygon(c_shape))  # left to GEOS, which passes it


def test_a_ring_going_round_twice_is_not_simple():
    twice = around(0, 0, [1] * 7, [k * 4 * math.pi / 7 for k in range(7)])  # a heptagram: turns add to 4 pi
    assert not shapely.is_valid(shapely.Polygon(twice))
    assert star_shaped(ragged([[twice]])).tolist() == [False]


def test_field_like_outlines_in_projected_metres_pass():
    """Outlines going once round their middle with a ragged edge (what the benchmark generates)."""
    rng = np.random.default_rng(7)
    fields = []
    for _ in range(200):
        n = int(rng.integers(20, 61))
        angles = 2 * math.pi * (np.arange(n) + 0.8 * rng.random(n)) / n
        radii = rng.uniform(80, 400) * rng.uniform(0.75, 1.0, n)
        fields.append([around(500_000 + rng.uniform(-1e4, 1e4), 5_300_000 + rng.uniform(-1e4, 1e4), radii, angles)])
    assert star_shaped(ragged(fields)).all()


coordinate = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False)
scale = st.sampled_from([1e-7, 1e-3, 1.0, 100.0, 1e5])


@st.composite
def rings(draw):
    """Star-like rings (sorted angles, random radii, some collinear or repeated points) and arbitrary ones."""
    cx, cy, s = draw(coordinate), draw(coordinate), draw(scale)
    n = draw(st.integers(3, 12))
    if draw(st.booleans()):
        angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n)))
        if draw(st.booleans()):
            angles = angles[::-1]
        radii = draw(st.lists(st.floats(0, 3) | st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))
        return around(cx, cy, [r * s for r in radii], angles)
    points = draw(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=n, max_size=n))
    return closed([(cx + x * s, cy + y * s) for x, y in points])


@settings(max_examples=1500, deadline=None)
@given(st.lists(rings(), min_size=1, max_size=8))
def test_never_passes_a_ring_geos_calls_invalid(outlines):
    passed = star_shaped(ragged([[ring] for ring in outlines]))
    valid = np.array([shapely.is_valid(shapely.Polygon(ring)) for ring in outlines])
    assert not (passed & ~valid).any(), [outlines[i] for i in np.flatnonzero(passed & ~valid)]


@pytest.mark.parametrize("shift", [0.0, 1e6, -3e6])
def test_shifted_copies_agree(shift):
    """Far from the origin the subtraction from the centre still decides the same way."""
    star = around(shift, shift, [1, 0.5] * 6, [k * math.pi / 6 for k in range(12)])
    assert star_shaped(ragged([[star]])).tolist() == [True]


def test_a_chunk_where_every_polygon_passes_is_judged_as_geos_would():
    """Nothing left for GEOS to judge: the outputs are those of GEOS-checked shapes."""
    boxes = [
        {"type": "Polygon", "coordinates": [[[x, 50], [x + 0.01, 50], [x + 0.01, 50.01], [x, 50.01], [x, 50]]]}
        for x in (10.0, 11.0, 12.0)
    ]
    checked = run([(box, None) for box in boxes])
    assert checked.problems == {} and checked.result.star_hits == 3
    for i, box in enumerate(boxes):
        assert shapely.equals_exact(checked.target(i), shapely.geometry.shape(box), tolerance=0)


@settings(max_examples=300, deadline=None)
@given(st.lists(rings(), min_size=1, max_size=6), st.booleans())
def test_rings_are_oriented_as_geos_orients_them(outlines, with_hole):
    """Orientation is asked of valid polygons only (the checks orient what they accept)."""
    polygons = [p for p in map(shapely.Polygon, outlines) if p.is_valid and p.area > 0]
    if with_hole:
        holes = [shapely.affinity.scale(p, 0.3, 0.3, origin=p.representative_point()) for p in polygons]
        polygons = [
            shapely.Polygon(p.exterior.coords, [h.exterior.coords]) for p, h in zip(polygons, holes, strict=True)
        ]
        polygons = [p for p in polygons if p.is_valid]
    geometries = np.array(polygons, dtype=object)
    if not len(geometries):
        return
    ours = oriented(from_shapely(geometries, np.arange(len(geometries)))).to_shapely()
    expected = shapely.orient_polygons(geometries, exterior_cw=False)
    for a, b in zip(ours, expected, strict=True):
        assert shapely.equals_exact(a, b, tolerance=0), (a.wkt, b.wkt)
