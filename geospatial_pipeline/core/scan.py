"""One compiled pass over a chunk of GeoJSON Feature texts: JSON validity, the members a field record has,
and the shape and numbers of its geometry's coordinates, whatever the spelling (key order, escapes,
whitespace, foreign members, any number form JSON allows).

Per record it reports whether the text is JSON (as Python's `json` judges it, NaN and Infinity included,
lone surrogate escapes allowed, invalid UTF-8 refused, nesting capped at MAX_DEPTH), whether it is an
object, where its `properties` value lies, what its `geometry` is, and, for a geometry object, the type
named by its `type` member and the nested arrays of its `coordinates`: the child count of every array
level by level (level 0 the coordinates array itself, the last level a position's numbers) and the byte
span of every number (that part lives in core/geometry_scan.py). Numbers are converted by the caller in
one Arrow cast (correctly rounded, as Python's `float`). The last of duplicate members wins, as in
Python. Nothing here decodes strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numba
import numpy as np
import pyarrow as pa

from geospatial_pipeline.core.arrays import Bools, Bytes, Float64s, Int8s, Int32s, Int64s
from geospatial_pipeline.core.geometry_scan import C_ABSENT, MAX_LEVELS, NumbersOut, Offsets, _geometry
from geospatial_pipeline.core.json_kernels import (
    E_EOF,
    E_EXTRA,
    ERRORS,
    MAX_DEPTH,
    _after_member,
    _member_key,
    _string,
    _text_equals,
    _value,
    _ws,
)

# Record status.
OK, MALFORMED, NOT_OBJECT = 0, 1, 2
# What a member holds.
ABSENT, NULL, OBJECT, OTHER = 0, 1, 2, 3

_TOP_KEYS = tuple(np.frombuffer(k, dtype=np.uint8) for k in (b"type", b"properties", b"geometry"))
_FEATURE = np.frombuffer(b"Feature", dtype=np.uint8)

# The kernels' output arrays, grouped as scan() hands them over (see Scanned for what each holds).
RecordOut: TypeAlias = tuple[Int8s, Int8s, Int64s, Bools]  # status, error, error_at, is_feature
PropsOut: TypeAlias = tuple[Int8s, Int64s, Int64s, Bools]  # kind, start, end, nonfinite
GeomOut: TypeAlias = tuple[Int8s, Int8s, Int8s, Int8s, Int8s]  # kind, type, coords, leaf_level, deepest


@numba.njit(cache=True, nogil=True)
def _records(
    buf: Bytes,
    starts: Int64s,
    ends: Int64s,
    rec: RecordOut,
    props: PropsOut,
    geom: GeomOut,
    lvl_lo: Int64s,
    lvl_hi: Int64s,
    levels: Int32s,
    fill: Int64s,
    nums: NumbersOut,
) -> int:
    """Scan every record buf[starts[r]:ends[r]]; see scan() for the outputs. Returns numbers written."""
    status, error, error_at, is_feature = rec
    props_kind, props_start, props_end, props_nonfinite = props
    geom_kind, geom_type, coords_state, leaf_level, deepest = geom
    num_lo = nums[3]
    num_hi = nums[4]
    stack = np.empty(MAX_DEPTH + 1, dtype=np.uint8)
    nfill = 0
    for r in range(len(starts)):
        end = ends[r]
        i = _ws(buf, starts[r], end)
        if i + 3 <= end and buf[i] == 0xEF and buf[i + 1] == 0xBB and buf[i + 2] == 0xBF:  # a byte-order mark
            i = _ws(buf, i + 3, end)
        status[r], error[r], error_at[r], is_feature[r] = OK, 0, 0, False
        props_kind[r], props_start[r], props_end[r], props_nonfinite[r] = ABSENT, 0, 0, False
        geom_kind[r], geom_type[r], coords_state[r], leaf_level[r], deepest[r] = ABSENT, -1, C_ABSENT, -1, -1
        num_lo[r] = nfill
        for k in range(MAX_LEVELS):
            lvl_lo[r, k] = lvl_hi[r, k] = fill[k]
        err = 0
        if i >= end:
            err = E_EOF
        elif buf[i] != 0x7B:
            i, err, _ = _value(buf, i, end, 0, stack)
            if not err:
                status[r] = NOT_OBJECT
        else:
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == 0x7D:
                i += 1
            else:
                i, err, nfill = _members(
                    buf, i, end, stack, r, is_feature, props, geom, lvl_lo, lvl_hi, levels, fill, nums, nfill
                )
        if not err and _ws(buf, i, end) != end:
            err, i = E_EXTRA, _ws(buf, i, end)
        if err:
            status[r], error[r], error_at[r] = MALFORMED, err, i - starts[r]
            nfill = num_lo[r]
            for k in range(MAX_LEVELS):
                fill[k] = lvl_hi[r, k] = lvl_lo[r, k]
        num_hi[r] = nfill
    return nfill


@numba.njit(cache=True, nogil=True)
def _members(
    buf: Bytes,
    i: int,
    end: int,
    stack: Bytes,
    r: int,
    is_feature: Bools,
    props: PropsOut,
    geom: GeomOut,
    lvl_lo: Int64s,
    lvl_hi: Int64s,
    levels: Int32s,
    fill: Int64s,
    nums: NumbersOut,
    nfill: int,
) -> tuple[int, int, int]:
    """The members of record r's top-level object, from its first key at buf[i] to its closing brace:
    (index after the brace, error, numbers written)."""
    props_kind, props_start, props_end, props_nonfinite = props
    geom_kind, geom_type, coords_state, leaf_level, deepest = geom
    while True:
        i, err, which = _member_key(buf, i, end, _TOP_KEYS)
        if err:
            return i, err, nfill
        if which == 0 and buf[i] == 0x22:  # type
            j, err, escaped = _string(buf, i, end)
            is_feature[r] = err == 0 and _text_equals(buf, i + 1, j - 1, escaped, _FEATURE)
        elif which == 2 and buf[i] == 0x7B:  # a geometry object: the last geometry member counts
            nfill = nums[3][r]
            for k in range(MAX_LEVELS):
                fill[k] = lvl_hi[r, k] = lvl_lo[r, k]
            geom_kind[r] = OBJECT
            j, err, nfill = _geometry(
                buf,
                i,
                end,
                stack,
                r,
                geom_type,
                coords_state,
                leaf_level,
                deepest,
                lvl_lo,
                lvl_hi,
                levels,
                fill,
                nums,
                nfill,
            )
        else:
            j, err, nonfinite = _value(buf, i, end, 1, stack)
            if not err:
                kind = OBJECT if buf[i] == 0x7B else NULL if buf[i] == 0x6E else OTHER
                if which == 0:
                    is_feature[r] = False
                elif which == 1:
                    props_kind[r], props_start[r], props_end[r], props_nonfinite[r] = kind, i, j, nonfinite
                elif which == 2:
                    nfill = nums[3][r]
                    for k in range(MAX_LEVELS):
                        fill[k] = lvl_hi[r, k] = lvl_lo[r, k]
                    geom_kind[r], geom_type[r], coords_state[r], leaf_level[r], deepest[r] = kind, -1, C_ABSENT, -1, -1
        if err:
            return j, err, nfill
        i, err, closed = _after_member(buf, j, end)
        if err or closed:
            return i, err, nfill


@dataclass
class Scanned:
    """What scan() found, one entry per record unless said otherwise (see the module docstring)."""

    status: Int8s  # OK, MALFORMED or NOT_OBJECT
    error: Int8s  # ERRORS code of a MALFORMED record
    error_at: Int64s  # its byte position in the record
    is_feature: Bools  # `type` is "Feature"
    props_kind: Int8s  # ABSENT, NULL, OBJECT or OTHER
    props_start: Int64s  # the `properties` value's span in the joined text
    props_end: Int64s
    props_nonfinite: Bools  # NaN, Infinity or an overflowing number inside `properties`
    geom_kind: Int8s  # ABSENT, NULL, OBJECT or OTHER
    geom_type: Int8s  # geometry_scan.TYPE_NAMES index, -1 if missing or unknown
    coords: Int8s  # geometry_scan.C_* state of the coordinates
    leaf_level: Int8s  # levels of arrays down to the numbers (-1: no numbers)
    deepest: Int8s  # deepest array level reached (-1: none)
    level_lo: Int64s  # (records, MAX_LEVELS): each record's entries in `levels`
    level_hi: Int64s
    levels: list[Int32s]  # per level, the child count of each array at that level
    number_lo: Int64s  # each record's entries in `numbers`
    number_hi: Int64s
    numbers: Float64s  # float64, as Python's float() reads the text
    number_kind: Int8s  # N_* per number

    def message(self, r: int) -> str:
        return f"not valid JSON: {ERRORS[int(self.error[r])]} at byte {int(self.error_at[r])}"


def scan(text: bytes, starts: Int64s, ends: Int64s) -> Scanned:
    """Scan the records text[starts[r]:ends[r]]."""
    buf = np.frombuffer(text, dtype=np.uint8)
    n = len(starts)
    cap = len(buf) // 2 + 1  # every array and every number takes two bytes at least

    def ints() -> Int64s:
        return np.empty(n, dtype=np.int64)

    def flags() -> Bools:
        return np.empty(n, dtype=np.bool_)

    def small() -> Int8s:
        return np.empty(n, dtype=np.int8)

    rec = (small(), small(), ints(), flags())
    props = (small(), ints(), ints(), flags())
    geom = (small(), small(), small(), small(), small())
    lvl_lo, lvl_hi = np.empty((n, MAX_LEVELS), dtype=np.int64), np.empty((n, MAX_LEVELS), dtype=np.int64)
    levels = np.empty((MAX_LEVELS, cap), dtype=np.int32)
    fill = np.zeros(2 * MAX_LEVELS, dtype=np.int64)  # per level: entries written; then _structure's scratch
    wide = len(buf) >= 2**31
    offsets: Offsets = np.empty(cap + 1, dtype=np.int64) if wide else np.empty(cap + 1, dtype=np.int32)
    offsets[0] = 0
    kinds = np.empty(cap, dtype=np.int8)
    nums = (offsets, np.empty(len(buf), dtype=np.uint8), kinds, ints(), ints())
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    count = _records(buf, starts, ends, rec, props, geom, lvl_lo, lvl_hi, levels, fill, nums)
    texts = pa.Array.from_buffers(
        pa.large_string() if wide else pa.string(),
        count,
        [None, pa.py_buffer(offsets[: count + 1]), pa.py_buffer(nums[1])],
    )
    numbers = texts.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return Scanned(
        *rec,
        *props,
        *geom,
        lvl_lo,
        lvl_hi,
        [levels[k, : fill[k]].copy() for k in range(MAX_LEVELS)],
        nums[3],
        nums[4],
        numbers,
        kinds[:count].copy(),
    )
