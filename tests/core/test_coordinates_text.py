"""The compiled reader of `coordinates` text: every number it reads is the double orjson reads, every value it
takes is plain valid JSON, and whatever it cannot read exactly it hands back instead of guessing."""

from __future__ import annotations

import math
import re

import numpy as np
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import coordinates_text as ct

RING = "[[10,50],[10.5,50],[10.5,50.5],[10,50]]"


def read(*values: bytes, multi: bool = False):
    lengths = np.array([len(v) for v in values], dtype=np.int64)
    ends = np.cumsum(lengths)
    return ct.read_values(b"".join(values), ends - lengths, ends, np.full(len(values), multi))


def ring_with(x: str) -> bytes:
    """A closed ring whose first and last x is `x`."""
    return f"[[[{x},50],[10.5,50],[10.5,50.5],[{x},50]]]".encode()


@pytest.mark.parametrize(
    "spelling, status",
    [
        ("0", ct.TAKEN),
        ("-0", ct.TAKEN),  # orjson: the integer 0, so +0.0
        ("-0.0", ct.TAKEN),  # a float: -0.0
        ("123456789012345", ct.TAKEN),  # 15 digits: exact
        ("0.000000000000000000001", ct.TAKEN),  # one digit over 10**21
        ("12.3456789012345", ct.TAKEN),
        ("1234567890123456", ct.ASK_ORJSON),  # 16 digits
        ("0.1234567890123456", ct.ASK_ORJSON),
        ("0.00000000000000000000001", ct.ASK_ORJSON),  # 10**23 is not a double
        ("1e5", ct.ASK_ORJSON),
        ("1.5E-3", ct.ASK_ORJSON),
        ("01", ct.NOT_PLAIN),
        ("1.", ct.NOT_PLAIN),
        (".5", ct.NOT_PLAIN),
        ("+1", ct.NOT_PLAIN),
        ("-", ct.NOT_PLAIN),
        ("--1", ct.NOT_PLAIN),
        ("1-", ct.NOT_PLAIN),
        ("true", ct.NOT_PLAIN),
        ('"1"', ct.NOT_PLAIN),
        ("NaN", ct.NOT_PLAIN),
    ],
)
def test_numbers_are_read_as_orjson_reads_them_or_handed_back(spelling, status):
    got, coords, *_ = read(ring_with(spelling))
    assert got.tolist() == [status]
    if status == ct.TAKEN:
        expected = float(orjson.loads(spelling))
        assert coords[0, 0] == expected and math.copysign(1, coords[0, 0]) == math.copysign(1, expected)
        assert coords.tobytes() == np.array(orjson.loads(ring_with(spelling))[0], dtype=np.float64).tobytes()


@settings(max_examples=400, deadline=None)
@given(
    x=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
    spelling=st.sampled_from(["{!r}", "{:.7f}", "{:.15g}", "{:.3f}", "{:.0f}", "{:.12f}", "{:.20f}"]),
)
def test_any_decimal_reads_to_the_double_orjson_makes(x, spelling):
    text = spelling.format(x)
    status, coords, *_ = read(ring_with(text))
    expected = float(orjson.loads(text))
    if status[0] == ct.TAKEN:
        assert coords[0, 0] == expected and math.copysign(1, coords[0, 0]) == math.copysign(1, expected)
    else:  # what it cannot read exactly, it hands back
        assert status[0] == ct.ASK_ORJSON
        digits = text.lstrip("-").replace(".", "").lstrip("0")
        assert len(digits) > 15 or "e" in text.lower() or len(text.partition(".")[2]) > 22


@pytest.mark.parametrize(
    "value, multi, status",
    [
        (f"[{RING}]", False, ct.TAKEN),
        (f" \t[ {RING} ,\n{RING} ]\r\n", False, ct.TAKEN),  # JSON whitespace anywhere
        (f"[[{RING}],[{RING},{RING}]]", True, ct.TAKEN),
        ("[]", False, ct.NOT_PLAIN),  # no rings
        ("[]", True, ct.NOT_PLAIN),  # no polygons
        ("[[]]", True, ct.NOT_PLAIN),
        ("[[[10,50],[10.5,50],[10,50]]]", False, ct.NOT_PLAIN),  # three positions
        ("[[[10,50],[10.5,50],[10.5,50.5],[10,50.1]]]", False, ct.NOT_PLAIN),  # not closed
        ("[[[10,50,3],[10.5,50,3],[10.5,50.5,3],[10,50,3]]]", False, ct.NOT_PLAIN),  # 3D
        ("[[[10],[10.5,50],[10.5,50.5],[10]]]", False, ct.NOT_PLAIN),
        (f"[{RING}] x", False, ct.NOT_PLAIN),  # more after the value
        (f"[{RING}],", False, ct.NOT_PLAIN),
        (f"[{RING},]", False, ct.NOT_PLAIN),
        (f"[{RING}|{RING}]", False, ct.NOT_PLAIN),
        (f"[{RING}]", True, ct.NOT_PLAIN),  # a Polygon where a MultiPolygon was named
        (f"[[{RING}]]", False, ct.NOT_PLAIN),
        (f"[[{RING}]", False, ct.NOT_PLAIN),  # unbalanced
        ("[[[10,50],[10.5,50],[10.5,50.5],[10,50]],[[1e400,5],[1,5],[1,6],[1e400,5]]]", False, ct.ASK_ORJSON),
    ],
)
def test_values_are_taken_only_when_they_decode_plain(value, multi, status):
    got, coords, rings, parts, geoms = read(value.encode(), multi=multi)
    assert got.tolist() == [status]
    if status == ct.TAKEN:
        decoded = orjson.loads(value)
        polygons = decoded if multi else [decoded]
        assert coords.tolist() == [xy for polygon in polygons for ring in polygon for xy in ring]
        assert np.diff(rings).tolist() == [len(ring) for polygon in polygons for ring in polygon]
        assert np.diff(parts).tolist() == [len(polygon) for polygon in polygons]
        assert np.diff(geoms).tolist() == [len(polygons)]


def test_a_value_not_taken_leaves_its_neighbours_arrays_untouched():
    good = f"[{RING}]".encode()
    status, coords, rings, parts, geoms = read(good, b"[[[10,50],[10.5,50],[10,50]]]", b"[[[1,2", good)
    assert status.tolist() == [ct.TAKEN, ct.NOT_PLAIN, ct.NOT_PLAIN, ct.TAKEN]
    one = np.array(orjson.loads(good)[0], dtype=np.float64)
    assert coords.tobytes() == np.concatenate([one, one]).tobytes()
    assert rings.tolist() == [0, 4, 8] and parts.tolist() == [0, 1, 2] and geoms.tolist() == [0, 1, 2]


# find_spans' rules in plain Python, as the text lane first had them: the specification it is held to.
_KEY = b'"coordinates"'
_AFTER_KEY = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_LETTER_ESCAPES = (b"\\u006", b"\\u007")


def reference_span(text: bytes) -> tuple[int, int, bool] | None:
    """(start, end, MultiPolygon?) of the bytes that would be a Polygon's (`[[[`) or MultiPolygon's (`[[[[`)
    coordinates: from after the key to the text's last `]]]` (`]]]]`), or its first one after the key if a
    string comes between; none if the key occurs twice or a letter may be spelled as an escape."""
    key = text.find(_KEY)
    if key < 0:
        return None
    gap = _AFTER_KEY.match(text, key + len(_KEY))
    if gap is None:
        return None
    start = gap.end()
    if not text.startswith(b"[[[", start):
        return None
    multi = text.startswith(b"[", start + 3)
    close = b"]]]]" if multi else b"]]]"
    end = text.rfind(close, start)
    if end < 0:
        return None
    end += len(close)
    if text.find(b'"', start, end) >= 0:
        end = text.find(close, start) + len(close)
    if text.find(_KEY, end) >= 0:
        return None
    if b"\\" in text and (_LETTER_ESCAPES[0] in text or _LETTER_ESCAPES[1] in text):
        return None
    return start, end, multi


_PIECES = [
    b'"coordinates"',
    b'"coordinates" : ',
    b":",
    b" ",
    b"\n",
    b"[",
    b"[[[",
    b"[[[[",
    b"]",
    b"]]]",
    b"]]]]",
    b",",
    b'"',
    b"\\",
    b"\\u0063",
    b"\\u0073",
    b"\\u00e9",
    b"\\u006",
    b"1.5",
    b"-2",
    b"x",
    b'{"type":"Polygon","coordinates":',
    b'"properties":{',
    b"}",
]


_SOME = st.lists(st.sampled_from(_PIECES), max_size=12).map(b"".join)
# Mostly texts with a key and a value where the reference looks for one, ending anywhere.
_TEXT = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=25).map(b"".join),
    st.tuples(
        _SOME,
        st.sampled_from([b'"coordinates":', b'"coordinates" :\n ', b'"coordinates"']),
        st.sampled_from([b"[[[", b"[[[[", b"[["]),
        _SOME,
        st.sampled_from([b"]]]", b"]]]]", b"]]", b""]),
        _SOME | st.just(b""),
    ).map(b"".join),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=6))
@example([b'"coordinates":[[[1,2]]] "\\u006', b'"coordinates":[[[1,2]]] "\\u0073'])  # an escape that ends the text
def test_spans_are_found_by_the_rules_of_the_reference(texts):
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts, stops, multi = ct.find_spans(b"".join(texts), ends - lengths, ends)
    got = [
        None if s < 0 else (int(s - first), int(e - first), bool(m))
        for s, e, m, first in zip(starts, stops, multi, ends - lengths, strict=True)
    ]
    assert got == [reference_span(t) for t in texts]
