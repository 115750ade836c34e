"""Plain Polygon and MultiPolygon `coordinates` values read from their JSON text in one compiled pass.

Reading a value's numbers through orjson makes a Python float of each (about 4 µs for a 40-vertex field)
and checking its structure takes numpy several passes over the text; here one loop does both, at a few
nanoseconds a byte. A value is taken exactly when orjson decodes it and spatial.flatten_polygons takes
the result (a JSON number is read the way orjson reads it), so the arrays are the ones decoding gives.
Numbers whose exact double needs more than one rounding-free division (over 15 digits, or an exponent)
are not read here: their values are marked for spatial's own text reader, which asks orjson.
"""

from __future__ import annotations

import numba
import numpy as np

from geospatial_pipeline.core import kernel_cache

kernel_cache.configure()  # before any kernel is defined: see kernel_cache

TAKEN, NOT_PLAIN, ASK_ORJSON = 0, 1, 2

# 10**k, exact in a double for k <= 22: a decimal of at most 15 digits divided by one is correctly rounded.
_POW10 = np.array([10.0**k for k in range(23)])
_SPACE = np.zeros(256, dtype=np.bool_)
_SPACE[[0x20, 0x09, 0x0A, 0x0D]] = True


def read_values(
    text: bytes, starts: np.ndarray, ends: np.ndarray, multi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values text[starts[k]:ends[k]] → (status per value, coords (V, 2), ring, part and geometry offsets
    of the TAKEN values in order)."""
    buf = np.frombuffer(text, dtype=np.uint8)
    m = len(starts)
    coords = np.empty(len(buf) // 2 + 2, dtype=np.float64)  # a number and its separator: two bytes at least
    counts = np.empty(len(buf) // 8 + 2, dtype=np.int64)  # the shortest ring, "[[0,0]]", is 7 bytes
    status = np.empty(m, dtype=np.int8)
    ring_sizes, part_sizes, geom_sizes = counts, np.empty_like(counts), np.empty(m, dtype=np.int64)
    numbers, rings, parts, geoms = _read(
        buf, starts, ends, multi, _SPACE, _POW10, coords, ring_sizes, part_sizes, geom_sizes, status
    )
    return (
        status,
        coords[:numbers].reshape(-1, 2).copy(),
        _offsets(ring_sizes[:rings]),
        _offsets(part_sizes[:parts]),
        _offsets(geom_sizes[:geoms]),
    )


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


@numba.njit(cache=True, nogil=True)
def _number(buf, i, end, pow10, coords, n):
    """The JSON number at buf[i:] into coords[n]: (index after it, status)."""
    neg = buf[i] == 45  # "-"
    if neg:
        i += 1
    if i >= end or not (48 <= buf[i] <= 57):
        return i, NOT_PLAIN
    mantissa = 0
    digits = 0
    if buf[i] == 48:  # a leading zero stands alone
        i += 1
        if i < end and 48 <= buf[i] <= 57:
            return i, NOT_PLAIN
    else:
        while i < end and 48 <= buf[i] <= 57:
            mantissa = mantissa * 10 + (buf[i] - 48)
            digits += 1
            i += 1
            if digits > 15:
                return i, ASK_ORJSON
    fraction = -1  # no fraction part: orjson reads an integer, so "-0" is 0.0
    if i < end and buf[i] == 46:  # "."
        i += 1
        fraction = 0
        if i >= end or not (48 <= buf[i] <= 57):
            return i, NOT_PLAIN
        while i < end and 48 <= buf[i] <= 57:
            mantissa = mantissa * 10 + (buf[i] - 48)
            if mantissa:
                digits += 1
            fraction += 1
            i += 1
            if digits > 15 or fraction > 22:
                return i, ASK_ORJSON
    if i < end and (buf[i] == 101 or buf[i] == 69):  # an exponent
        return i, ASK_ORJSON
    if fraction < 0:
        coords[n] = float(-mantissa if neg else mantissa)
    else:
        value = mantissa / pow10[fraction]
        coords[n] = -value if neg else value
    return i, TAKEN


@numba.njit(cache=True, nogil=True)
def _skip(buf, i, end, space):
    while i < end and space[buf[i]]:
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _ring(buf, i, end, space, pow10, coords, n):
    """A ring "[[x,y],...]" at buf[i] (an opening bracket): (index after it, numbers read, status)."""
    first = n
    i = _skip(buf, i + 1, end, space)
    while True:
        if i >= end or buf[i] != 91:  # "[": a position
            return i, n, NOT_PLAIN
        for axis in range(2):
            i = _skip(buf, i + 1, end, space)
            if i >= end:
                return i, n, NOT_PLAIN
            c = buf[i]
            if not (c == 45 or 48 <= c <= 57):
                return i, n, NOT_PLAIN
            i, status = _number(buf, i, end, pow10, coords, n)
            if status != TAKEN:
                return i, n, status
            n += 1
            i = _skip(buf, i, end, space)
            if i >= end or buf[i] != (44 if axis == 0 else 93):  # "," between, "]" after
                return i, n, NOT_PLAIN
        i = _skip(buf, i + 1, end, space)
        if i >= end:
            return i, n, NOT_PLAIN
        if buf[i] == 93:  # "]": the ring is complete
            if n - first < 8 or coords[first] != coords[n - 2] or coords[first + 1] != coords[n - 1]:
                return i, n, NOT_PLAIN  # under four positions, or not closed
            return i + 1, n, TAKEN
        if buf[i] != 44:
            return i, n, NOT_PLAIN
        i = _skip(buf, i + 1, end, space)


@numba.njit(cache=True, nogil=True)
def _polygon(buf, i, end, space, pow10, coords, n, ring_sizes, r):
    """A polygon "[ring,...]" at buf[i]: (index after it, numbers, rings, status)."""
    i = _skip(buf, i + 1, end, space)
    while True:
        if i >= end or buf[i] != 91:
            return i, n, r, NOT_PLAIN
        before = n
        i, n, status = _ring(buf, i, end, space, pow10, coords, n)
        if status != TAKEN:
            return i, n, r, status
        ring_sizes[r] = (n - before) // 2
        r += 1
        i = _skip(buf, i, end, space)
        if i < end and buf[i] == 93:
            return i + 1, n, r, TAKEN
        if i >= end or buf[i] != 44:
            return i, n, r, NOT_PLAIN
        i = _skip(buf, i + 1, end, space)


@numba.njit(cache=True, nogil=True)
def _read(buf, starts, ends, multi, space, pow10, coords, ring_sizes, part_sizes, geom_sizes, status):
    n = r = p = g = 0
    for k in range(len(starts)):
        end = ends[k]
        n0, r0, p0 = n, r, p
        i = _skip(buf, starts[k], end, space)
        state = NOT_PLAIN
        if i < end and buf[i] == 91:
            if multi[k]:
                i = _skip(buf, i + 1, end, space)
                while True:
                    if i >= end or buf[i] != 91:
                        state = NOT_PLAIN
                        break
                    r1 = r
                    i, n, r, state = _polygon(buf, i, end, space, pow10, coords, n, ring_sizes, r)
                    if state != TAKEN:
                        break
                    part_sizes[p] = r - r1
                    p += 1
                    i = _skip(buf, i, end, space)
                    if i < end and buf[i] == 93:
                        i += 1
                        break
                    if i >= end or buf[i] != 44:
                        state = NOT_PLAIN
                        break
                    i = _skip(buf, i + 1, end, space)
            else:
                i, n, r, state = _polygon(buf, i, end, space, pow10, coords, n, ring_sizes, r)
                if state == TAKEN:
                    part_sizes[p] = r - r0
                    p += 1
            if state == TAKEN and _skip(buf, i, end, space) != end:
                state = NOT_PLAIN  # more after the value: not JSON
        status[k] = state
        if state == TAKEN:
            geom_sizes[g] = p - p0
            g += 1
        else:
            n, r, p = n0, r0, p0
    return n, r, p, g


_KEY = np.frombuffer(b'"coordinates"', dtype=np.uint8)


def find_spans(text: bytes, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each record text[starts[k]:ends[k]] would hold a Polygon's (`[[[`) or MultiPolygon's (`[[[[`)
    coordinates, in one compiled pass: the start and end (positions in `text`, -1 where there is none) and
    the MultiPolygon flag of each record's value.

    The value runs from after the `"coordinates"` key and its colon to the record's last `]]]` (`]]]]`), or
    to its first one if a string comes between. A record whose key occurs twice, or that may spell a letter
    of it as an escape (`\\u006`, `\\u007`), has none: then the key found is certainly the geometry's.
    Whether the bytes found are the whole value is for read_values to prove.
    (tests/core/test_coordinates_text.py keeps these rules in plain Python and holds this pass to them.)"""
    buf = np.frombuffer(text, dtype=np.uint8)
    found_start = np.full(len(starts), -1, dtype=np.int64)
    found_end = np.full(len(starts), -1, dtype=np.int64)
    multi = np.zeros(len(starts), dtype=np.bool_)
    _find_spans(buf, starts, ends, _KEY, _SPACE, found_start, found_end, multi)
    return found_start, found_end, multi


@numba.njit(cache=True, nogil=True)
def _find(buf, key, i, end):
    """First position of `key` in buf[i:end], or -1."""
    k = len(key)
    last = end - k
    while i <= last:
        if buf[i] == key[0]:
            j = 1
            while j < k and buf[i + j] == key[j]:
                j += 1
            if j == k:
                return i
        i += 1
    return -1


@numba.njit(cache=True, nogil=True)
def _closes_at(buf, i, size):
    """buf[i:i+size] is `size` closing brackets."""
    for j in range(size):  # noqa: SIM110 - numba compiles loops, not generator expressions
        if buf[i + j] != 93:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _count(buf, i, end, byte):
    c = 0
    for j in range(i, end):
        c += buf[j] == byte
    return c


@numba.njit(cache=True, nogil=True)
def _find_spans(buf, starts, ends, key, space, found_start, found_end, multi):
    for r in range(len(starts)):
        first, stop = starts[r], ends[r]
        at = _find(buf, key, first, stop)
        if at < 0:
            continue
        i = at + len(key)
        while i < stop and space[buf[i]]:
            i += 1
        if i >= stop or buf[i] != 58:  # ":"
            continue
        i += 1
        while i < stop and space[buf[i]]:
            i += 1
        if i + 3 > stop or buf[i] != 91 or buf[i + 1] != 91 or buf[i + 2] != 91:  # "[[["
            continue
        is_multi = i + 3 < stop and buf[i + 3] == 91
        size = 4 if is_multi else 3
        end = -1
        j = stop - size  # the last closing run at or after the value's start
        while j >= i:
            if _closes_at(buf, j, size):
                end = j + size
                break
            j -= 1
        if end < 0:
            continue
        if _count(buf, i, end, 34):  # a string between: the value ends at its first closing run
            j = i
            while not _closes_at(buf, j, size):
                j += 1
            end = j + size
        if _find(buf, key, end, stop) >= 0:
            continue
        if _count(buf, first, stop, 92) and _has_letter_escape(buf, first, stop):
            continue
        found_start[r], found_end[r], multi[r] = i, end, is_multi


@numba.njit(cache=True, nogil=True)
def _has_letter_escape(buf, i, end):
    """`\\u006` or `\\u007` in buf[i:end]: a letter of a key spelled as an escape."""
    for j in range(i, end - 4):
        if buf[j] == 92 and buf[j + 1] == 117 and buf[j + 2] == 48 and buf[j + 3] == 48 and buf[j + 4] == 54:
            return True
        if buf[j] == 92 and buf[j + 1] == 117 and buf[j + 2] == 48 and buf[j + 3] == 48 and buf[j + 4] == 55:
            return True
    return False
