"""Deduplication: per (intended date, field id) the latest arrival wins, on a tie the later record."""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.arrays import Int32s, Int64s, UInt64s
from geospatial_pipeline.core.schema import value_offsets


def winners(keys: pa.Table) -> Int64s:
    """Seq numbers of the records that survive deduplication, sorted.

    `keys` has processing_date, field_id, arrival_time (as int64 or timestamp) and seq. Per
    (processing_date, field_id) the latest arrival_time wins; on a tie the later record in input order.
    Field ids enter the sort as 64-bit hashes of their bytes, so the sort is numpy's over four integer
    columns (about 30 bytes a record, where a dictionary of millions of ids costs four times that). Rows a
    hash puts together are then compared as strings; should two different ids share a hash, the ids are
    dictionary-encoded instead, which is exact by construction.
    """
    if keys.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = _first_per_group(keys, _string_hashes(keys["field_id"]), exact=False)
    if chosen is None:
        encoded = pc.dictionary_encode(keys["field_id"])  # one dictionary shared by all chunks
        codes: Int32s = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
        chosen = _first_per_group(keys, codes, exact=True)
    return np.sort(chosen)


@overload
def _first_per_group(keys: pa.Table, id_codes: Int32s, exact: Literal[True]) -> Int64s: ...
@overload
def _first_per_group(keys: pa.Table, id_codes: UInt64s, exact: Literal[False]) -> Int64s | None: ...
def _first_per_group(keys: pa.Table, id_codes: Int32s | UInt64s, exact: bool) -> Int64s | None:
    """Seq of the latest record per (date, id code). Codes that are not `exact` (hashes) are checked
    against the ids: None if two different ids share one."""
    date = keys["processing_date"].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)
    arrival = keys["arrival_time"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    seq: Int64s = keys["seq"].combine_chunks().to_numpy(zero_copy_only=False)
    order = np.lexsort((-seq, -arrival, id_codes, date))  # last key sorts first: per group, latest first
    del arrival
    date, id_codes = date[order], id_codes[order]
    same = (date[1:] == date[:-1]) & (id_codes[1:] == id_codes[:-1])  # row i+1 is in row i's group
    del date, id_codes
    if not exact:
        ids, later = keys["field_id"], np.flatnonzero(same)
        if len(later) and not pc.all(pc.equal(ids.take(order[later]), ids.take(order[later + 1]))).as_py():
            return None
    first = np.ones(len(order), dtype=bool)
    first[1:] = ~same
    return seq[order[first]]


# Multiplier of the polynomial string hash (odd, so no bit of a byte is lost to the wrap-around).
_HASH_BASE = np.uint64(0x100000001B3)


def _string_hashes(values: pa.ChunkedArray) -> UInt64s:
    """sum(byte[i] * B**i) mod 2**64 of each string's UTF-8 bytes, mixed with its length: a block of
    strings at a time, straight from the Arrow buffers."""
    out = np.zeros(len(values), dtype=np.uint64)
    at = 0
    powers = np.ones(1, dtype=np.uint64)
    for chunk in values.chunks:
        n = len(chunk)
        if n == 0:
            continue
        offsets = value_offsets(chunk).astype(np.int64)
        lengths = np.diff(offsets)
        data_buffer = chunk.buffers()[2]  # absent when every string is empty
        data = np.frombuffer(data_buffer or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
        longest = int(lengths.max())
        if longest > len(powers):
            powers = np.full(longest, _HASH_BASE, dtype=np.uint64)
            powers[0] = 1
            powers = np.cumprod(powers, dtype=np.uint64)
        starts = offsets[:-1] - offsets[0]
        position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        terms = data.astype(np.uint64) * powers[position]
        filled = lengths > 0
        hashes = np.zeros(n, dtype=np.uint64)
        if len(terms):
            hashes[filled] = np.add.reduceat(terms, starts[filled])
        out[at : at + n] = hashes ^ (lengths.astype(np.uint64) << np.uint64(56))
        at += n
    return out
