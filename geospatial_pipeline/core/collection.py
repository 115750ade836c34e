"""A whole .geojson document, in one compiled pass: whether it is JSON, a FeatureCollection or a single
Feature, where each of its features lies (each becomes a record, in its original text) and its legacy
`crs` member. The document is validated as the records are (json_kernels.py); nothing is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from geospatial_pipeline.core.arrays import Bytes, Int64s
from geospatial_pipeline.core.json_kernels import (
    E_EOF,
    E_EXTRA,
    E_SEP,
    ERRORS,
    MAX_DEPTH,
    _after_member,
    _member_key,
    _text_equals,
    _value,
    _ws,
)

_FEATURE = np.frombuffer(b"Feature", dtype=np.uint8)
_COLLECTION_KEYS = tuple(np.frombuffer(k, dtype=np.uint8) for k in (b"type", b"features", b"crs"))
_FEATURE_COLLECTION = np.frombuffer(b"FeatureCollection", dtype=np.uint8)


@numba.njit(cache=True, nogil=True)
def _collection(buf: Bytes, member_starts: Int64s, member_ends: Int64s, spans: Int64s) -> tuple[int, int, int, int]:
    """A whole .geojson document: (error, error position, 1 if a FeatureCollection or 2 if a single
    Feature or 0, features found or -1 without a `features` array). Each `features` element's span goes
    to member_*; the `crs` member's span to spans[0:2]."""
    end = len(buf)
    stack = np.empty(MAX_DEPTH + 1, dtype=np.uint8)
    i = _ws(buf, 0, end)
    if i + 3 <= end and buf[i] == 0xEF and buf[i + 1] == 0xBB and buf[i + 2] == 0xBF:
        i = _ws(buf, i + 3, end)
    kind = 0
    count = -1  # no `features` array seen
    spans[0] = spans[1] = -1
    if i >= end or buf[i] != 0x7B:
        j, err, _ = _value(buf, i, end, 0, stack)
        if not err and _ws(buf, j, end) != end:
            err = E_EXTRA
        return err, j, 0, 0
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == 0x7D:
        i += 1
    else:
        while True:
            i, err, which = _member_key(buf, i, end, _COLLECTION_KEYS)
            if err:
                return err, i, 0, 0
            if which == 1 and buf[i] == 0x5B:  # features: each element a record
                count = 0
                j = _ws(buf, i + 1, end)
                if j < end and buf[j] == 0x5D:
                    j += 1
                else:
                    while True:
                        k, err, _ = _value(buf, j, end, 2, stack)
                        if err:
                            return err, k, 0, 0
                        member_starts[count], member_ends[count] = _ws(buf, j, end), k
                        count += 1
                        j = _ws(buf, k, end)
                        if j < end and buf[j] == 0x5D:
                            j += 1
                            break
                        if j >= end or buf[j] != 0x2C:
                            return (E_EOF if j >= end else E_SEP), j, 0, 0
                        j += 1
            else:
                j, err, _ = _value(buf, i, end, 1, stack)
                if err:
                    return err, j, 0, 0
                if which == 0:
                    kind = 0
                    if buf[i] == 0x22:
                        if _literal_string(buf, i, j, _FEATURE_COLLECTION):
                            kind = 1
                        elif _literal_string(buf, i, j, _FEATURE):
                            kind = 2
                elif which == 2:
                    spans[0], spans[1] = i, j
            i, err, closed = _after_member(buf, j, end)
            if err:
                return err, i, 0, 0
            if closed:
                break
    if _ws(buf, i, end) != end:
        return E_EXTRA, i, 0, 0
    return 0, 0, kind, count


@numba.njit(cache=True, nogil=True)
def _literal_string(buf: Bytes, i: int, j: int, word: Bytes) -> bool:
    """Is the JSON string token buf[i:j] the ASCII `word`, escapes decoded?"""
    escaped = False
    for k in range(i + 1, j - 1):
        if buf[k] == 0x5C:
            escaped = True
            break
    return _text_equals(buf, i + 1, j - 1, escaped, word)


@dataclass
class Collection:
    """What a .geojson document holds: `kind` 1 FeatureCollection, 2 a single Feature, 0 anything else."""

    error: str | None
    kind: int
    starts: Int64s  # each feature's span, for a FeatureCollection
    ends: Int64s
    crs: bytes | None  # the legacy `crs` member's JSON text


def read(text: bytes) -> Collection:
    buf = np.frombuffer(text, dtype=np.uint8)
    cap = len(buf) // 2 + 1
    starts, ends, spans = np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(2, dtype=np.int64)
    err, at, kind, count = _collection(buf, starts, ends, spans)
    if err:
        return Collection(f"file is not JSON: {ERRORS[err]} at byte {at}", 0, starts[:0], ends[:0], None)
    if kind == 1 and count < 0:
        kind = 0  # a FeatureCollection without a features array is not one
    crs = text[spans[0] : spans[1]] if spans[0] >= 0 else None
    return Collection(None, kind, starts[: max(count, 0)].copy(), ends[: max(count, 0)].copy(), crs)
