"""core/geometry_scan.py, through the record scan that calls it: each number of `coordinates` is the double
Python's `json` reads, however it is spelled; the nesting is counted level by level; coordinates that are
not nested numbers of one depth get their own state."""

from __future__ import annotations

import json
import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import geometry_scan, scan
from tests.core.test_scan import scanned


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**25), 10**25)


def spell(x: float | int, how: int) -> str:
    if isinstance(x, int):
        return str(x)
    return [repr(x), f"{x:.17g}", f"{x:.15g}", f"{x:e}", f"{x:.10E}", json.dumps(x), f"{x:.3f}"][how % 7]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(numbers, numbers), min_size=1, max_size=6), st.integers(0, 6), st.booleans())
def test_numbers_are_the_doubles_python_reads_however_they_are_spelled(points, how, properties_first):
    ring = ", ".join(f"[ {spell(x, how)} ,{spell(y, how + 1)}]" for x, y in points)
    geometry = f'{{"coordinates" : [[{ring}]], "type": "Polygon"}}'
    props = '"properties": {"field_id": "x"}'
    body = f'{props}, "geometry": {geometry}' if properties_first else f'"geometry":{geometry},{props}'
    text = f'{{"type": "Feature", {body}}}'.encode()
    sc = scanned(text)
    expected = [float(v) for pair in json.loads(text)["geometry"]["coordinates"][0] for v in pair]
    got = sc.numbers[sc.number_lo[0] : sc.number_hi[0]]
    assert [bits(v) for v in got] == [bits(v) for v in expected]


def test_the_integer_minus_zero_is_plus_zero_as_in_python():
    sc = scanned(b'{"type":"Feature","geometry":{"type":"Point","coordinates":[-0,-0.0]}}')
    x, y = sc.numbers[:2]
    assert math.copysign(1, x) == 1 and math.copysign(1, y) == -1


def test_coordinates_that_are_not_nested_numbers_are_told_apart():
    def coords(value: str) -> int:
        sc = scanned(b'{"type":"Feature","geometry":{"type":"Polygon","coordinates":' + value.encode() + b"}}")
        return int(sc.coords[0])

    assert coords("[[[1,2],[3,4]]]") == geometry_scan.C_OK
    assert coords('[[["1",2]]]') == geometry_scan.C_NOT_NUMBER
    assert coords("[[[1,2],[3,[4]]]]") == geometry_scan.C_UNEVEN
    assert coords("[[[[[1]]]]]") == geometry_scan.C_TOO_DEEP
    assert coords("{}") == geometry_scan.C_NOT_ARRAY


def test_each_level_counts_the_children_of_its_arrays():
    text = (
        b'{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[0,1],[0,0]]],'
        b"[[[5,5],[6,5],[5,6],[5,5]],[[5.1,5.1],[5.2,5.1],[5.1,5.2],[5.1,5.1]]]]}}"
    )
    sc = scanned(text)
    assert sc.status[0] == scan.OK and sc.coords[0] == geometry_scan.C_OK
    assert sc.geom_type[0] == geometry_scan.TYPE_NAMES.index("MultiPolygon")
    assert int(sc.leaf_level[0]) == 4  # one past level 3, the positions that hold the numbers
    counts = [sc.levels[k][sc.level_lo[0, k] : sc.level_hi[0, k]].tolist() for k in range(geometry_scan.MAX_LEVELS)]
    assert counts == [[2], [1, 2], [4, 4, 4], [2] * 12]
    flat = [v for polygon in json.loads(text)["geometry"]["coordinates"] for ring in polygon for p in ring for v in p]
    assert sc.numbers[sc.number_lo[0] : sc.number_hi[0]].tolist() == flat
