"""The compiled scan held to Python's json: validity, the members it finds, and the numbers it reads,
for records spelled every way JSON allows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import geometry_scan, scan


def scanned(*texts: bytes) -> scan.Scanned:
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    ends = np.cumsum(lengths)
    return scan.scan(b"".join(texts), ends - lengths, ends)


def python_verdict(text: bytes) -> int:
    """What Python's json makes of a record: MALFORMED, NOT_OBJECT or OK."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return scan.MALFORMED
    return scan.OK if isinstance(value, dict) else scan.NOT_OBJECT


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
spellings = st.sampled_from(
    [
        {},
        {"separators": (",", ":")},
        {"indent": 2},
        {"ensure_ascii": False},
        {"separators": (" , ", " : "), "ensure_ascii": False},
    ]
)


@settings(max_examples=800, deadline=None)
@given(values, spellings)
def test_any_json_python_writes_is_judged_as_python_reads_it(value, spelling):
    text = json.dumps(value, **spelling).encode()
    assert scanned(text).status[0] == python_verdict(text)


@settings(max_examples=1500, deadline=None)
@given(values, st.data())
def test_damaged_json_is_malformed_exactly_when_python_says_so(value, data):
    text = bytearray(json.dumps({"k": value, "type": "Feature"}).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        byte = data.draw(st.sampled_from(b'{}[],:"\\ -+.eE0123456789aflnrstuxNI\t\n\x01'))
        if action == "delete" and at < len(text):
            del text[at]
        elif action == "insert":
            text.insert(at, byte)
        elif action == "replace" and at < len(text):
            text[at] = byte
        elif action == "cut":
            del text[at:]
    assert scanned(bytes(text)).status[0] == python_verdict(bytes(text)), bytes(text)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (b'{"a":"\xff"}', scan.MALFORMED),  # invalid UTF-8
        (b'{"a":"\xed\xa0\x80"}', scan.OK),  # a surrogate in UTF-8: Python decodes bytes with surrogatepass
        (b'{"a":"\xed\x80"}', scan.MALFORMED),  # a sequence cut short
        (b'{"a":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x8c\xbe"}', scan.OK),
        (b'{"a":"\\ud800"}', scan.OK),  # a lone surrogate escape: Python reads it
        (b"\xef\xbb\xbf{}", scan.OK),  # a byte-order mark
        (b"[" * 1100 + b"]" * 1100, scan.MALFORMED),  # deeper than any JSON reader here goes
        (b'{"a":[1,2,]}', scan.MALFORMED),
        (b'{"a":-}', scan.MALFORMED),
        (b'{"a":01}', scan.MALFORMED),
        (b'{"a":1.}', scan.MALFORMED),
        (b'{"a":NaN,"b":-Infinity}', scan.OK),
        (b"", scan.MALFORMED),
        (b'"text"', scan.NOT_OBJECT),
    ],
)
def test_edges_of_the_grammar(text, status):
    assert scanned(text).status[0] == status


def test_members_are_found_in_any_order_spelling_and_with_the_last_duplicate_winning():
    texts = [
        b'{"properties":{"p":1},"geometry":{"coordinates":[1,2],"type":"Point"},"type":"Feature"}',
        b'{ "\\u0074ype" : "Fe\\u0061ture" , "id": 7, "bbox": [0,0,1,1], "properties" : {"p": {"x": [1]}},'
        b' "geometry" : { "type" : "MultiPolygon", "coordinates" : [] , "crs": {"type":"name"} } }',
        b'{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"geometry":null,"properties":null}',
        b'{"type":"FeatureCollection","properties":{},"geometry":[[1]]}',
    ]
    sc = scanned(*texts)
    joined = b"".join(texts)
    assert sc.status.tolist() == [scan.OK] * 4
    assert sc.is_feature.tolist() == [True, True, True, False]
    for r, text in enumerate(texts):
        props = json.loads(text)["properties"]
        if sc.props_kind[r] != scan.ABSENT:
            assert json.loads(joined[sc.props_start[r] : sc.props_end[r]]) == props
    assert sc.geom_kind.tolist() == [scan.OBJECT, scan.OBJECT, scan.NULL, scan.OTHER]
    names = geometry_scan.TYPE_NAMES
    assert sc.geom_type[:2].tolist() == [names.index("Point"), names.index("MultiPolygon")]
    assert sc.number_hi[2] == sc.number_lo[2]  # the geometry that lost to a later member left no numbers


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=12), st.binary(max_size=4))
def test_any_bytes_in_a_string_are_judged_as_python_decodes_them(inside, after):
    """Python's json decodes bytes as UTF-8 with surrogatepass; every other invalid sequence is not JSON."""
    text = b'{"a":"' + inside.replace(b'"', b"").replace(b"\\", b"") + b'"' + after.replace(b"}", b"") + b"}"
    assert scanned(text).status[0] == python_verdict(text), text
