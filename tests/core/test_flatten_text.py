"""Coordinates read from the record text must give exactly what decoding them into lists gave.

parse_chunk reads plain polygons' coordinates straight from the bytes (reading._text_lane); with
COORDINATES_FROM_TEXT off it decodes every record whole and flattens the lists (flatten_polygons). Each
test parses the same records both ways and requires the same chunk: properties, geometry texts, reasons
(and their order), lenient records, and bit-identical polygon arrays.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import reading
from geospatial_pipeline.core.reading import RawChunk, parse_chunk

FIELDS = ("index", "multi", "coords", "ring_offsets", "part_offsets", "geom_offsets")
PROPS = '{"field_id":"F-1","arrival_time":"2025-01-02T05:00:00Z","processing_date":"2025-01-02"}'
RING = "[[10,50],[10.5,50],[10.5,50.5],[10,50.5],[10,50]]"
HOLE = "[[10.1,50.1],[10.1,50.2],[10.2,50.2],[10.1,50.1]]"
ESCAPES = "\\u00e9" * 12  # more than the backslashes looked at one by one


def both(texts: list[bytes], monkeypatch) -> tuple[reading.ParsedChunk, reading.ParsedChunk]:
    chunk = RawChunk("raw/x.geojsonl", texts=list(texts), lines=list(range(1, len(texts) + 1)))
    monkeypatch.setattr(reading, "COORDINATES_FROM_TEXT", True)
    new = parse_chunk(chunk)
    monkeypatch.setattr(reading, "COORDINATES_FROM_TEXT", False)
    old = parse_chunk(chunk)
    return new, old


def assert_same(new: reading.ParsedChunk, old: reading.ParsedChunk) -> None:
    assert new.texts == old.texts and new.lines == old.lines
    assert new.properties == old.properties
    assert new.geometries == old.geometries
    assert list(new.reasons.items()) == list(old.reasons.items())
    assert new.lenient == old.lenient
    assert (new.polygons is None) == (old.polygons is None)
    if old.polygons is not None:
        for name in FIELDS:
            a, b = getattr(new.polygons, name), getattr(old.polygons, name)
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), name  # bit for bit: -0.0 is not 0.0 here


def lane_records(texts: list[bytes]) -> list[int]:
    """Records whose coordinates the text lane reads (before the decoded record is checked)."""
    lane_texts, _ = reading._text_lane(texts)
    return [] if lane_texts is None else [i for i, t in enumerate(lane_texts) if t is not None]


def feature(geometry: str, props: str = PROPS) -> bytes:
    return f'{{"type":"Feature","geometry":{geometry},"properties":{props}}}'.encode()


def polygon(coordinates: str, kind: str = "Polygon") -> str:
    return f'{{"type":"{kind}","coordinates":{coordinates}}}'


PLAIN = [
    feature(polygon(f"[{RING}]")),
    feature(polygon(f"[{RING},{HOLE}]")),
    feature(polygon(f"[[{RING}],[{RING},{HOLE}]]", "MultiPolygon")),
    feature(polygon(f"[[{RING}]]", "MultiPolygon")),
    # Spacing as Python's json.dumps writes it, and more.
    json.dumps({"type": "Feature", "geometry": json.loads(polygon(f"[{RING},{HOLE}]")), "properties": {}}).encode(),
    feature(polygon(f"[[{RING}]]", "MultiPolygon").replace(":", " :\n ")),
    # Member order.
    f'{{"properties":{PROPS},"geometry":{{"coordinates":[{RING}],"type":"Polygon"}},"type":"Feature"}}'.encode(),
    f'{{"geometry":{{"type":"Polygon","bbox":[1,2,3,4],"coordinates":[{RING}]}},"type":"Feature","properties":{{}}}}'.encode(),
    # Numbers of every JSON spelling, kept exactly (-0 is the integer 0, -0.0 is negative zero).
    feature(polygon("[[[1e2,-0.0],[1E-7,-0],[0,1.5e+3],[-12345678901234567890,3.0E-2],[1e2,-0.0]]]")),
    feature(
        polygon("[[[18446744073709551615,9223372036854775808],[1,2],[3,4],[18446744073709551615,9223372036854775808]]]")
    ),
    feature(
        polygon("[[[0.1,0.2],[0.30000000000000004,1e-320],[2.2250738585072014e-308,1.7976931348623157e308],[0.1,0.2]]]")
    ),
    feature(polygon("[[[0,0],[1,0],[1,1],[0,0]]]")),  # 0 and 1, where true/false would land
    # Escapes elsewhere that cannot spell a letter of "coordinates".
    feature(polygon(f"[{RING}]"), '{"name":"caf\\u00e9 \\"x\\" \\\\ \\n"}'),
    # "]]]" after the coordinates, in a string and in an array.
    feature(polygon(f"[{RING}]"), '{"a":"]]]]","b":[[[[1]]]]}'),
]

# Whitespace between closing brackets: not looked for in the text, decoded whole (same results either way).
SPACED = [
    feature(polygon(f"[{RING}]").replace(",", " , ").replace("[", "[ \t").replace("]", "\r\n]")),
    feature(polygon(f"[[{RING}]]", "MultiPolygon").replace("]]", "] ]")),
]

NOT_PLAIN = [
    feature(polygon("[]")),
    feature(polygon("[[]]")),
    feature(polygon("[[[]]]")),
    feature(polygon("[]", "MultiPolygon")),
    feature(polygon("[[]]", "MultiPolygon")),
    feature(polygon("[[[]]]", "MultiPolygon")),
    feature(polygon("[[[[]]]]", "MultiPolygon")),
    feature(polygon("[[[10,50],[10.1,50],[10,50]]]")),  # three positions
    feature(polygon("[[[10,50],[10.1,50],[10.1,50.1],[10,50.1]]]")),  # not closed
    feature(polygon("[[[10,50,1],[10.1,50,1],[10.1,50.1,1],[10,50,1]]]")),  # 3D
    feature(polygon("[[[10,50],[10.1,50,3],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[10.1],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[10.1,true],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[10.1,false],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[10.1,null],[10.1,50.1],[10,50]]]")),
    feature(polygon('[[[10,50],[10.1,"50"],[10.1,50.1],[10,50]]]')),
    feature(polygon('[[[10,50],{"a":1},[10.1,50.1],[10,50]]]')),
    feature(polygon("[[[10,50],[[10.1,50]],[10.1,50.1],[10,50]]]")),
    feature(polygon("[[[10,50],[10.1,50],[10.1,50.1],[10,50]],5]")),  # a number beside a ring
    feature(polygon("[[[10,50],5,[10.1,50],[10.1,50.1],[10,50]]]")),  # a number among positions
    feature(polygon("[[5,[10,50],[10.1,50],[10.1,50.1],[10,50]]]")),
    feature(polygon(f"[[{RING}],5]", "MultiPolygon")),
    feature(polygon(f"[{RING}]", "MultiPolygon")),  # a Polygon's value under the other type
    feature(polygon(f"[[{RING}]]")),
    feature(polygon("[[[10,50],[10.5,50],[10.5,50.5],[10,50]]]", "MultiLineString")),
    feature(polygon(f"[{RING}]", "LineString")),
    feature('{"type":"Point","coordinates":[10,50]}'),
    feature("null"),
    feature('{"type":"GeometryCollection","geometries":[' + polygon(f"[{RING}]") + "]}"),
    feature('{"type":"Polygon"}'),
    feature('{"type":"Polygon","coordinates":null}'),
    feature('{"type":"Polygon","coordinates":"[[[1,2]]]"}'),
]

MALFORMED = [
    feature(polygon("[[[10,50],[10.5,50],[10.5,50.5],[10,50],]]")),  # trailing comma
    feature(polygon("[[[10,50][10.5,50],[10.5,50.5],[10,50]]]")),  # missing comma
    feature(polygon("[[[10,50],[10.5,]50,[10.5,50.5],[10,50]]]")),  # a number outside its position
    feature(polygon("[[[10,50],[10.5,50]5,[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[10.5,50],5[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[10.5 50],[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[10.5,,50],[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[,50],[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[10.5,50],[10.5,50.5],[10,50]]]]")),  # one bracket too many
    feature(polygon("[[[10,50],[10.5,50],[10.5,50.5],[10,50]]")),
    feature(polygon("[[[10,50],[10.5|50],[10.5,50.5],[10,50]]]")),
    feature(polygon("[[[10,50],[10.5,50Z],[10.5,50.5],[10,50]]]")).replace(b"Z", b"\xff"),  # not UTF-8
    feature(polygon("[[[01,50],[10.5,50],[10.5,50.5],[01,50]]]")),  # numbers JSON does not allow
    feature(polygon("[[[+1,50],[10.5,50],[10.5,50.5],[+1,50]]]")),
    feature(polygon("[[[.5,50],[10.5,50],[10.5,50.5],[.5,50]]]")),
    feature(polygon("[[[1.,50],[10.5,50],[10.5,50.5],[1.,50]]]")),
    feature(polygon("[[[1e,50],[10.5,50],[10.5,50.5],[1e,50]]]")),
    feature(polygon("[[[-,50],[10.5,50],[10.5,50.5],[-,50]]]")),
    feature(polygon("[[[1-2,50],[10.5,50],[10.5,50.5],[1-2,50]]]")),
    feature(polygon("[[[1e400,50],[10.5,50],[10.5,50.5],[1e400,50]]]")),  # Python's json: Infinity
    feature(polygon("[[[NaN,50],[10.5,50],[10.5,50.5],[NaN,50]]]")),
    feature(polygon(f"[{RING}]"), '{"field_id":"F-1",}'),  # broken outside the coordinates
    feature(polygon(f"[{RING}]"))[:-1],
    feature(polygon(f"[{RING}]")) + b"x",
    feature(polygon(f"[{RING}]"), "null").replace(b'"type":"Feature"', b'"type":"feature"'),
]


def test_plain_polygons_are_read_from_text_exactly(monkeypatch):
    assert lane_records(PLAIN) == list(range(len(PLAIN)))
    new, old = both(PLAIN, monkeypatch)
    assert len(old.polygons) == len(PLAIN)
    assert_same(new, old)
    coords = new.polygons.coords.ravel()
    assert np.signbit(coords[coords == 0]).any() and not np.signbit(coords[coords == 0]).all()


@pytest.mark.parametrize("text", SPACED + NOT_PLAIN + MALFORMED, ids=lambda t: t.decode("latin-1")[30:90])
def test_one_record_that_is_not_plain(text, monkeypatch):
    assert_same(*both([text], monkeypatch))
    assert_same(*both([PLAIN[0], text, PLAIN[2]], monkeypatch))


def test_every_kind_of_record_in_one_chunk_keeps_its_order(monkeypatch):
    texts = [t for group in zip(PLAIN * 4, SPACED + NOT_PLAIN + MALFORMED, strict=False) for t in group]
    new, old = both(texts, monkeypatch)
    assert_same(new, old)
    assert len(new.polygons) > len(PLAIN)


# The key: "coordinates" may also be a property, a string, a foreign member, or spelled with escapes.
KEY_CASES = [
    # Also a property key or value, before or after the geometry: the key is not certain, decoded whole.
    f'{{"type":"Feature","properties":{{"coordinates":[{RING}]}},"geometry":{polygon(f"[{RING}]")}}}',
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":{{"coordinates":[{RING}]}}}}',
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":{{"x":"coordinates"}}}}',
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":{{"x":"\\"coordinates\\":[[[1,2]]]"}}}}',
    # The geometry's key escaped: the literal one is a property's, with a polygon that must not be taken.
    f'{{"type":"Feature","properties":{{"coordinates":[{HOLE}]}},'
    f'"geometry":{{"type":"Polygon","\\u0063oordinates":[{RING}]}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinate\\u0073":[{RING}]}},'
    f'"properties":{{"coordinates":[{HOLE}]}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{HOLE}]}},"properties":{{"\\u0078":1}}}}',
    f'{{"type":"Feature","properties":{{"e":"{ESCAPES}","coordinates":[{HOLE}]}},'
    f'"geometry":{{"type":"Polygon","c\\u006Fordinates":[{RING}]}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}]}},"properties":{{"e":"{ESCAPES}"}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}]}},"properties":{{"e":"\\\\u0063"}}}}',
    # No geometry key at all: the literal key is a property's.
    f'{{"type":"Feature","geometry":null,"properties":{{"type":"Polygon","coordinates":[{RING}]}}}}',
    f'{{"type":"Feature","properties":{{"geometry":{polygon(f"[{RING}]")}}}}}',
    # Duplicate members: orjson keeps the last.
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":{{}},"geometry":{polygon(f"[{HOLE}]")}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}],"coordinates":[{HOLE}]}},'
    f'"properties":{{}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}]}},"properties":{{}},'
    f'"geometry":{{"type":"Polygon"}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}],"type":"Point"}},"properties":{{}}}}',
    # A foreign member of the geometry holding an array, and a nested "coordinates" in one.
    f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[{RING}],"extra":[[[[1]]]]}},"properties":{{}}}}',
    f'{{"type":"Feature","geometry":{{"type":"Polygon","extra":{{"coordinates":[{HOLE}]}},'
    f'"coordinates":[{RING}]}},"properties":{{}}}}',
    # Properties that are not an object, a Feature that is not one.
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":null}}',
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":[1]}}',
    f'{{"type":"Feature","geometry":{polygon(f"[{RING}]")}}}',
    f'{{"type":"NotAFeature","geometry":{polygon(f"[{RING}]")},"properties":{{}}}}',
    f'[{{"type":"Feature","geometry":{polygon(f"[{RING}]")},"properties":{{}}}}]',
]


@pytest.mark.parametrize("text", KEY_CASES)
def test_where_the_coordinates_key_is(text, monkeypatch):
    assert_same(*both([text.encode()], monkeypatch))
    assert_same(*both([PLAIN[1], text.encode(), PLAIN[3]], monkeypatch))


def test_an_uncertain_key_is_never_read_from_text():
    uncertain = [KEY_CASES[k].encode() for k in (0, 1, 2, 4, 5)]
    assert lane_records(uncertain) == []
    assert lane_records([KEY_CASES[3].encode()]) == [0]  # an escaped quote: no second key after all
    assert lane_records([KEY_CASES[7].encode(), KEY_CASES[8].encode()]) == [1]  # escapes, none of a letter


def test_decoding_whole_keeps_its_results_with_flatten_off(monkeypatch):
    texts = PLAIN + NOT_PLAIN + MALFORMED
    chunk = RawChunk("raw/x.geojsonl", texts=texts, lines=list(range(1, len(texts) + 1)))
    monkeypatch.setattr(reading, "COORDINATES_FROM_TEXT", True)
    new = parse_chunk(chunk, flatten=False)
    monkeypatch.setattr(reading, "COORDINATES_FROM_TEXT", False)
    assert_same(new, parse_chunk(chunk, flatten=False))
    assert new.polygons is None


# Random polygons, spelled and spaced at random, some broken on purpose.

_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-180, max_value=180).map(lambda x: round(x, 7)),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0.0, -0.0, 0, 1, 1e-7, 5e-324, 1e22, 1e23]),
)
_not_numbers = st.sampled_from([True, False, None, "1", [], [1.0], {}])
_spellings = st.sampled_from(["{!r}", "{!r}", "{:.17g}", "{:.17e}", "{:.17E}", "{:e}", "{:.3f}"])  # some lossy


@st.composite
def _geometries(draw):
    multi = draw(st.booleans())
    parts = []
    for _ in range(draw(st.integers(1, 3)) if multi else 1):
        rings = []
        for _ in range(draw(st.integers(1, 3))):
            ring = draw(st.lists(st.lists(_numbers, min_size=2, max_size=2), min_size=3, max_size=8))
            rings.append(ring + ([] if draw(st.integers(0, 9)) == 9 else [list(ring[0])]))  # mostly closed
        parts.append(rings)
    coordinates: list = parts if multi else parts[0]
    ring = coordinates[0][0] if multi else coordinates[0]
    mutation = draw(st.integers(0, 12))
    if mutation == 1:
        ring[0].append(draw(_numbers))  # a third number
    elif mutation == 2:
        ring[1][draw(st.integers(0, 1))] = draw(_not_numbers)
    elif mutation == 3:
        ring.insert(1, draw(_not_numbers))
    return {"type": "MultiPolygon" if multi else "Polygon", "coordinates": coordinates}


_spaces = st.sampled_from([("", ""), ("", " "), (" ", "\n"), ("", " \t ")])


@st.composite
def _records(draw):
    members = [("type", "Feature"), ("geometry", draw(_geometries())), ("properties", {"n": draw(_numbers)})]
    text = _dumps(dict(draw(st.permutations(members))), draw(_spaces), draw)
    if draw(st.integers(0, 12)) == 12:  # one byte changed
        k = draw(st.integers(0, len(text) - 1))
        text = text[:k] + draw(st.sampled_from([",", "]", "[", " ", "1", "-", "e", "|", '"'])) + text[k + 1 :]
    return text.encode()


def _dumps(value, spaces: tuple[str, str], draw) -> str:
    """JSON with `spaces` (inside brackets, after separators) and numbers spelled in any valid way."""
    inside, after = spaces
    if isinstance(value, dict):
        items = (f"{json.dumps(k)}:{after}{_dumps(v, spaces, draw)}" for k, v in value.items())
        return "{" + f",{after}".join(items) + "}"
    if isinstance(value, list):
        return "[" + inside + f",{after}".join(_dumps(v, spaces, draw) for v in value) + inside + "]"
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return draw(_spellings).format(value)
    return json.dumps(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_records(), min_size=1, max_size=12))
def test_random_records_read_from_text_as_decoded(texts):
    from _pytest.monkeypatch import MonkeyPatch

    with MonkeyPatch.context() as monkeypatch:
        assert_same(*both(texts, monkeypatch))


# read_polygon_coordinates alone: a value is taken exactly when orjson decodes it and flatten_polygons
# accepts the result, with the same arrays.

_VALUE_BYTES = b"[],0123456789.-+eE |x"


@st.composite
def _values(draw):
    geometry = draw(_geometries())
    value = bytearray(_dumps(geometry["coordinates"], draw(_spaces), draw).encode())
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        k = draw(st.integers(0, len(value)))
        byte = draw(st.sampled_from(list(_VALUE_BYTES)))
        action = draw(st.integers(0, 2))
        if action == 0:
            value.insert(k, byte)
        elif k < len(value):
            if action == 1:
                del value[k]
            else:
                value[k] = byte
    return bytes(value), geometry["type"] == "MultiPolygon"


@settings(max_examples=500, deadline=None)
@given(st.lists(_values(), min_size=1, max_size=8))
def test_read_polygon_coordinates_takes_what_decodes_plain(items):
    from geospatial_pipeline.core.spatial import flatten_polygons, read_polygon_coordinates

    values = [v for v, _ in items]
    ragged = read_polygon_coordinates(values, np.array([m for _, m in items], dtype=bool))
    decoded = []
    for k, (value, multi) in enumerate(items):
        try:
            coordinates = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if type(coordinates) is list:
            decoded.append((k, multi, coordinates))
    expected, _ = flatten_polygons(decoded)
    assert ragged.index.tolist() == expected.index.tolist()
    for name in FIELDS:
        assert getattr(ragged, name).tobytes() == getattr(expected, name).tobytes(), name


@pytest.mark.parametrize("numbers_batch", [64, 5, 1])
def test_values_orjson_rejects_leave_their_neighbours_read(numbers_batch, monkeypatch):
    from geospatial_pipeline.core import spatial

    monkeypatch.setattr(spatial, "_NUMBERS_BATCH", numbers_batch)
    good = f"[{RING},{HOLE}]".encode()
    rejected = [b"[[[1e400,50],[10.5,50],[10.5,50.5],[1e400,50]]]", b"[[[01,5],[1,5],[1,6],[01,5]]]"]
    rejected += [b"[[[1,5],[2,5],[2,6],[1,5]]] 7", b"7 [[[1,5],[2,5],[2,6],[1,5]]]", b"[[[1,5],[2,5]7,[2,6],[1,5]]]"]
    values = [good if k % 7 else rejected[k // 7 % len(rejected)] for k in range(100)]
    values[-1] = values[1] = rejected[0]
    ragged = spatial.read_polygon_coordinates(values, np.zeros(len(values), dtype=bool))
    taken = [k for k, v in enumerate(values) if v == good]
    assert ragged.index.tolist() == taken
    one, _ = spatial.flatten_polygons([(0, False, orjson.loads(good))])
    assert ragged.coords.tobytes() == np.tile(one.coords, (len(taken), 1)).tobytes()
