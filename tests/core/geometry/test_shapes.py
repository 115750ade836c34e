"""core/geometry/shapes.py: every geometry type in one flat layout. Shapely geometries go in and come
back equal, whatever is taken, concatenated or reordered; the offset helpers agree with plain loops."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.geometry import shapes
from geospatial_pipeline.core.geometry.shapes import Shapes, any_per, from_shapely, offsets_of, ranges

EVERY_TYPE = shapely.from_wkt(
    [
        "POINT (1 2)",
        "LINESTRING (0 0, 1 1, 2 0)",
        "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 1 2, 2 2, 2 1, 1 1))",
        "MULTIPOINT ((5 5), (6 6), (7 5))",
        "MULTILINESTRING ((0 0, 1 0), (2 2, 3 3, 4 2))",
        "MULTIPOLYGON (((10 10, 12 10, 12 12, 10 10)),"
        " ((20 20, 23 20, 23 23, 20 23, 20 20), (21 21, 21 22, 22 21, 21 21)))",
        "POLYGON ((30 30, 31 30, 30.5 31, 30 30))",
    ]
)


def test_every_type_round_trips_through_the_layout():
    layout = from_shapely(EVERY_TYPE, np.arange(len(EVERY_TYPE)) * 10)
    assert layout.index.tolist() == [0, 10, 20, 30, 40, 50, 60]
    assert [shapes.TYPE_NAMES[k] for k in layout.kind] == [g.geom_type for g in EVERY_TYPE]
    assert shapely.equals_exact(layout.to_shapely(), EVERY_TYPE, tolerance=0).all()
    assert np.diff(layout.vertex_offsets).tolist() == shapely.get_num_coordinates(EVERY_TYPE).tolist()


def test_rings_and_their_exteriors_are_flagged_per_path():
    ring, exterior = from_shapely(EVERY_TYPE, np.arange(len(EVERY_TYPE))).rings
    # paths: point, line, polygon (2 rings), 3 single points, 2 lines, multipolygon (1 + 2 rings), polygon
    assert ring.tolist() == [False, False, True, True] + [False] * 5 + [True] * 4
    assert exterior.tolist() == [False, False, True, False] + [False] * 5 + [True, True, False, True]


@given(st.lists(st.integers(0, 6), max_size=12), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_take_concat_and_reorder_keep_each_geometry(rows, seed):
    geometries = EVERY_TYPE[rows]
    layout = from_shapely(geometries, np.arange(len(rows)))
    order = np.random.default_rng(seed).permutation(len(rows))
    taken = layout.take(order)
    assert shapely.equals_exact(taken.to_shapely(), geometries[order], tolerance=0).all()
    cut = len(rows) // 2
    halves = [layout.take(order[cut:]), layout.take(order[:cut])]
    joined = Shapes.concat(halves)  # back in record order
    assert joined.index.tolist() == list(range(len(rows)))
    assert shapely.equals_exact(joined.to_shapely(), geometries, tolerance=0).all()


def test_a_repair_output_in_three_dimensions_is_laid_out_in_two():
    layout = from_shapely(shapely.from_wkt(["POLYGON Z ((0 0 5, 1 0 5, 1 1 5, 0 0 5))"]), np.array([3]))
    assert layout.coords.shape == (4, 2)
    assert shapely.get_coordinates(layout.to_shapely()).tolist() == [[0, 0], [1, 0], [1, 1], [0, 0]]


def test_empty_and_concat_of_nothing():
    assert len(shapes.empty()) == 0 and len(Shapes.concat([])) == 0
    assert len(Shapes.concat([shapes.empty(), shapes.empty()])) == 0


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5)), max_size=20))
def test_ranges_is_the_concatenation_of_aranges(pairs):
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    ends = starts + np.array([n for _, n in pairs], dtype=np.int64)
    expected = [v for s, e in zip(starts, ends, strict=True) for v in range(s, e)]
    assert ranges(starts, ends).tolist() == expected
    assert offsets_of(ends - starts).tolist() == [0, *np.cumsum(ends - starts).tolist()]


@given(st.lists(st.lists(st.booleans(), max_size=4), max_size=10))
def test_any_per_group(groups):
    flags = np.array([f for g in groups for f in g], dtype=bool)
    offsets = offsets_of(np.array([len(g) for g in groups], dtype=np.int64))
    assert any_per(flags, offsets).tolist() == [any(g) for g in groups]
