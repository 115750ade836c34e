"""The geometry member of a record, read within core/scan.py's compiled pass over the record: the geometry
type its `type` member names, and its `coordinates` array's nesting (each array's child count, level by
level) with every number's text copied out for the caller's one Arrow cast.

Anything but nested arrays of numbers of one depth up to MAX_LEVELS is validated the general JSON way
and reported by a C_* state, so a wrong geometry costs its own record a reason, never the record's scan.
"""

from __future__ import annotations

from typing import TypeAlias

import numba
import numpy as np

from geospatial_pipeline.core.arrays import Bytes, Int8s, Int32s, Int64s
from geospatial_pipeline.core.json_kernels import (
    N_NEG_ZERO_INT,
    _after_member,
    _member_key,
    _number,
    _string,
    _text_equals,
    _value,
    _ws,
)

MAX_LEVELS = 4  # MultiPolygon: polygons, rings, positions, numbers

# Geometry type codes, as named by the geometry's `type` member (-1: missing or another string).
TYPE_NAMES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection")
# Coordinates: how the array nesting turned out.
C_OK, C_ABSENT, C_NOT_ARRAY, C_NOT_NUMBER, C_UNEVEN, C_TOO_DEEP = range(6)

_GEOMETRY_KEYS = tuple(np.frombuffer(k, dtype=np.uint8) for k in (b"type", b"coordinates"))
_NAMES = tuple(np.frombuffer(n.encode(), dtype=np.uint8) for n in TYPE_NAMES)

# The number outputs, as core/scan.py hands them over.
Offsets: TypeAlias = Int32s | Int64s  # int64 once the text passes 2 GiB
NumbersOut: TypeAlias = tuple[Offsets, Bytes, Int8s, Int64s, Int64s]  # offsets, texts, kinds, lo, hi


@numba.njit(cache=True, nogil=True)
def _structure(
    buf: Bytes,
    i: int,
    end: int,
    levels: Int32s,
    fill: Int64s,
    offsets: Offsets,
    data: Bytes,
    kinds: Int8s,
    nfill: int,
) -> tuple[int, int, int, int, int]:
    """Read the coordinates array at buf[i] ('['): each array's child count appended to levels[its level],
    each number's text to `data` (offsets[n]:offsets[n + 1], the integer -0 written as 0).

    Returns (state, index after the array, numbers written, leaf level, deepest level); the leaf level is
    one past the level of the arrays that hold numbers (-1: no numbers). Anything but nested arrays of
    numbers of one depth up to MAX_LEVELS, or a JSON error, returns at once with a state other than C_OK
    (C_NOT_NUMBER for a JSON error too): the caller validates the value the general way."""
    counts = fill[MAX_LEVELS:]  # the caller's scratch: child counts of the arrays open at each level
    level = -1
    leaf = -1
    deepest = -1
    need_value = True
    opened = False
    at = offsets[nfill]
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return C_NOT_NUMBER, i, nfill, leaf, deepest
        c = buf[i]
        if need_value and c == 0x5B:
            level += 1
            if level >= MAX_LEVELS:
                return C_TOO_DEEP, i, nfill, leaf, level
            if leaf >= 0 and level >= leaf:
                return C_UNEVEN, i, nfill, leaf, level
            if level > 0:
                counts[level - 1] += 1
            counts[level] = 0
            deepest = max(deepest, level)
            opened = True
            i += 1
        elif need_value and (c == 0x2D or c == 0x4E or c == 0x49 or 0x30 <= c <= 0x39):
            if leaf < 0:
                leaf = level + 1
            elif level + 1 != leaf:
                return C_UNEVEN, i, nfill, leaf, deepest
            j, err, kind = _number(buf, i, end)
            if err:
                return C_NOT_NUMBER, i, nfill, leaf, deepest
            k = i + 1 if kind == N_NEG_ZERO_INT else i
            data[at : at + j - k] = buf[k:j]
            at += j - k
            kinds[nfill] = kind
            nfill += 1
            offsets[nfill] = at
            counts[level] += 1
            need_value = opened = False
            i = j
        elif c == 0x5D and (opened or not need_value):
            levels[level, fill[level]] = counts[level]
            fill[level] += 1
            level -= 1
            i += 1
            need_value = opened = False
            if level < 0:
                return C_OK, i, nfill, leaf, deepest
        elif c == 0x2C and not need_value:
            need_value = True
            i += 1
        else:
            return C_NOT_NUMBER, i, nfill, leaf, deepest


@numba.njit(cache=True, nogil=True)
def _geometry(
    buf: Bytes,
    i: int,
    end: int,
    stack: Bytes,
    r: int,
    out_type: Int8s,
    out_coords: Int8s,
    out_leaf: Int8s,
    out_deep: Int8s,
    lvl_lo: Int64s,
    lvl_hi: Int64s,
    levels: Int32s,
    fill: Int64s,
    nums: NumbersOut,
    nfill: int,
) -> tuple[int, int, int]:
    """The geometry object at buf[i] ('{'), at depth 1: its type code and coordinates structure into the
    outputs of record r. Returns (index after it, error, numbers written so far)."""
    offsets, data, kinds = nums[0], nums[1], nums[2]
    out_type[r], out_coords[r], out_leaf[r], out_deep[r] = -1, C_ABSENT, -1, -1
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == 0x7D:
        return i + 1, 0, nfill
    while True:
        i, err, which = _member_key(buf, i, end, _GEOMETRY_KEYS)
        if err:
            return i, err, nfill
        if which == 0 and buf[i] == 0x22:  # type
            j, err, escaped = _string(buf, i, end)
            if err:
                return j, err, nfill
            out_type[r] = -1
            for k in range(len(_NAMES)):
                if _text_equals(buf, i + 1, j - 1, escaped, _NAMES[k]):
                    out_type[r] = k
                    break
        elif which == 1:  # coordinates: the last one counts
            for k in range(MAX_LEVELS):
                fill[k] = lvl_lo[r, k]
            nfill = nums[3][r]
            state = C_NOT_ARRAY
            if buf[i] == 0x5B:
                state, j, nfill, leaf, deep = _structure(buf, i, end, levels, fill, offsets, data, kinds, nfill)
            if state != C_OK:  # not plain nested numbers, or not JSON: validate it the general way
                for k in range(MAX_LEVELS):
                    fill[k] = lvl_lo[r, k]
                nfill = nums[3][r]
                leaf = deep = -1
                j, err, _ = _value(buf, i, end, 2, stack)
                if err:
                    return j, err, nfill
            out_coords[r], out_leaf[r], out_deep[r] = state, leaf, deep
        else:
            j, err, _ = _value(buf, i, end, 2, stack)
            if err:
                return j, err, nfill
            if which == 0:
                out_type[r] = -1
        i, err, closed = _after_member(buf, j, end)
        if err or closed:
            for k in range(MAX_LEVELS):
                lvl_hi[r, k] = fill[k]
            return i, err, nfill
