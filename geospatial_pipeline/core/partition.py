"""One chunk of a partition's batch through every rule → typed Arrow rows per outcome.

The storage side (lake/) streams chunks in and the tables out; everything decided about a record is
decided here, so a test can drive the whole rule set with bytes and a date.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.lateness import Timing, classify_timing, iso_utc_texts
from geospatial_pipeline.core.reading import ParsedChunk
from geospatial_pipeline.core.records import FIELD_ID_MAX_CHARS, Reason, validate_properties
from geospatial_pipeline.core.rules import WGS84, Rules
from geospatial_pipeline.core.spatial import check_parsed_geometries

DEFAULT_CRS = WGS84

BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])

# The published columns, in order; the GeoParquet file and the late batches share them.
FIELD_SCHEMA = pa.schema(
    [
        pa.field("field_id", pa.string(), nullable=False),
        pa.field("processing_date", pa.date32(), nullable=False),
        pa.field("arrival_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("arrived_late", pa.bool_(), nullable=False),
        pa.field("detected_in", pa.date32(), nullable=False),
        pa.field("late_reason", pa.string()),
        pa.field("source_crs", pa.string(), nullable=False),
        pa.field("area_ha", pa.float64(), nullable=False),
        pa.field("perimeter_m", pa.float64(), nullable=False),
        pa.field("repaired", pa.bool_(), nullable=False),
        pa.field("data", pa.string(), nullable=False),
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("geometry", pa.binary(), nullable=False),
        pa.field("bbox", BBOX_TYPE, nullable=False),
    ]
)
# Columns with a handful of distinct values per partition: worth Parquet's dictionary encoding. The rest
# (ids, geometry, properties) are nearly all distinct, and a dictionary attempt on them costs CPU for nothing.
FEW_VALUES = ("processing_date", "detected_in", "late_reason", "source_crs", "source_key")
# Late rows also carry their RFC 7946 geometry (lon/lat) for the per-field GeoJSON objects.
LATE_SCHEMA = FIELD_SCHEMA.append(pa.field("geometry_geojson", pa.string(), nullable=False))


@dataclass
class ChunkOutcome:
    on_time: pa.Table
    late: pa.Table
    rejected: list[bytes]  # GeoJSONSeq lines, one per rejected record
    reason_counts: Counter = field(default_factory=Counter)

    @property
    def records(self) -> int:
        return self.on_time.num_rows + self.late.num_rows + len(self.rejected)


def classify_chunk(
    parsed: ParsedChunk,
    partition: dt.date,
    rules: Rules,
    now: dt.datetime,
    first_seq: int = 0,
) -> ChunkOutcome:
    """Apply identity, time, spatial and lateness rules to one parsed chunk."""
    n = len(parsed.texts)
    reasons = {i: list(r) for i, r in parsed.reasons.items()}
    structural = np.zeros(n, dtype=bool)
    structural[list(reasons)] = True  # not a Feature at all: nothing further can be checked

    props = property_columns(parsed.properties, ~structural, parsed.lenient)
    for i, problems in props.problems.items():
        reasons.setdefault(i, []).extend(problems)
    good = props.valid
    intended, arrival = props.intended, props.arrival
    idx = np.flatnonzero(good)

    def flag(mask: np.ndarray, reason: Reason, message) -> None:
        for i in np.flatnonzero(mask):
            reasons.setdefault(int(i), []).append((reason, message(int(i)) if callable(message) else message))

    day_start = intended.astype("datetime64[us]")
    flag(
        good & (arrival < day_start),
        Reason.ARRIVAL_BEFORE_INTENDED_DATE,
        lambda i: f"arrival_time {arrival[i]}Z is before the start of its intended date {intended[i]}",
    )
    latest = np.datetime64(now.astimezone(dt.UTC).replace(tzinfo=None) + rules.max_clock_skew, "us")
    flag(
        good & (arrival > latest),
        Reason.ARRIVAL_IN_FUTURE,
        lambda i: f"arrival_time {arrival[i]}Z is later than now plus the allowed clock skew",
    )
    flag(
        good & (intended < np.datetime64(rules.partition_start, "D")),
        Reason.BEFORE_PARTITION_START,
        lambda i: f"intended date {intended[i]} is before the first partition {rules.partition_start}",
    )
    timing = np.full(n, Timing.ON_TIME, dtype=np.int8)
    timing[idx] = classify_timing(intended[idx], arrival[idx], partition, rules.lateness_window)
    flag(
        good & (timing == Timing.FUTURE),
        Reason.FUTURE_PARTITION,
        lambda i: f"intended date {intended[i]} is after the partition being processed ({partition})",
    )

    crs_names = np.full(n, parsed.collection_crs or DEFAULT_CRS, dtype=object)
    named = props.crs != None  # noqa: E711 - elementwise comparison
    crs_names[named] = props.crs[named]
    spatial = check_parsed_geometries(parsed.geometries, parsed.polygons, crs_names, structural, rules.spatial)
    for i, problems in spatial.reasons.items():
        reasons.setdefault(i, []).extend(problems)

    rejected_mask = np.zeros(n, dtype=bool)
    rejected_mask[list(reasons)] = True
    accepted = ~rejected_mask
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    lines = np.asarray(parsed.lines, dtype=np.int64)
    on_time_idx = np.flatnonzero(accepted & (timing == Timing.ON_TIME))
    late_idx = np.flatnonzero(accepted & (timing == Timing.LATE))

    def rows(sel: np.ndarray, late: bool) -> pa.Table:
        bounds = spatial.bounds_of(sel)
        columns = {
            "field_id": props.field_id.take(sel),
            "processing_date": pa.array(intended[sel], pa.date32()),
            "arrival_time": pa.array(arrival[sel], pa.timestamp("us", tz="UTC")),
            "arrived_late": pa.array(np.full(len(sel), late)),
            "detected_in": pa.array(np.full(len(sel), np.datetime64(partition, "D")), pa.date32()),
            "late_reason": (
                _late_reasons(intended[sel], arrival[sel], partition, rules.lateness_window)
                if late
                else pa.nulls(len(sel), pa.string())
            ),
            "source_crs": pa.array(spatial.source_crs[sel], pa.string()),
            "area_ha": pa.array(spatial.area_ha[sel]),
            "perimeter_m": pa.array(spatial.perimeter_m[sel]),
            "repaired": pa.array(spatial.repaired[sel]),
            "data": _utf8_column(props.data.take(sel)),
            "source_key": pa.repeat(pa.scalar(parsed.source_key, pa.string()), len(sel)),
            "source_line": pa.array(lines[sel]),
            "geometry": spatial.wkb_of(sel),
            "bbox": pa.StructArray.from_arrays([pa.array(bounds[:, k]) for k in range(4)], fields=list(BBOX_TYPE)),
        }
        table = pa.table(columns, schema=FIELD_SCHEMA)
        table = table.append_column("seq", pa.array(seq[sel]))
        if late:
            table = table.append_column("geometry_geojson", pa.array(spatial.geojson_of(sel), pa.string()))
        return table

    rejected_lines = []
    counts: Counter = Counter()
    for i in sorted(reasons, key=lambda i: (parsed.lines[i], i)):  # source order, however the file was chunked
        problems = reasons[i]
        counts.update({r.value for r, _ in problems})
        rejected_lines.append(reject_line(parsed.source_key, parsed.lines[i], parsed.texts[i], problems))
    return ChunkOutcome(rows(on_time_idx, False), rows(late_idx, True), rejected_lines, counts)


def _late_reasons(intended: np.ndarray, arrival: np.ndarray, partition: dt.date, window: dt.timedelta) -> pa.Array:
    """late_reason of each row, built a column at a time (`intended` datetime64[D], `arrival` [us], UTC)."""
    if len(intended) == 0:
        return pa.array([], pa.string())
    days = pa.array(np.datetime_as_string(intended, unit="D"), pa.string())
    delivered = pc.binary_join_element_wise(
        f"delivered in partition {partition.isoformat()}, after its intended partition ", days, ""
    )
    closes = intended.astype("datetime64[us]") + np.timedelta64(window, "us")
    arrived = pc.binary_join_element_wise(
        "arrived ",
        pa.array(iso_utc_texts(arrival), pa.string()),
        ", after the lateness window closed at ",
        pa.array(iso_utc_texts(closes), pa.string()),
        "",
    )
    return pc.if_else(pa.array(intended < np.datetime64(partition, "D")), delivered, arrived)


@dataclass
class PropertyColumns:
    """Validated properties as columns; rows that are not `valid` have reasons in `problems`.

    Text columns are Arrow, so the output tables take their rows without a Python object per value.
    """

    valid: np.ndarray
    field_id: pa.Array  # string, null where not valid
    intended: np.ndarray  # datetime64[D]
    arrival: np.ndarray  # datetime64[us], UTC
    data: pa.Array  # large_binary: JSON text of `data`, keys sorted; null where not valid
    problems: dict[int, list[tuple[Reason, str]]]
    crs: np.ndarray  # the `crs` property where it is a non-empty string (valid or not), else None


# What FieldProperties surely accepts, checked on whole columns (RE2 via Arrow): printable ASCII ids without
# separators, ISO 8601 instants with Z, an offset or nothing, YYYY-MM-DD dates. Anything else, and any
# row that fails a fast check, is judged by validate_properties itself, so the outcome and the words are
# pydantic's (tests/test_fast_path.py holds the two to the same answers).
_FAST_ID = rf"^[!-.0-\[\]-~]{{1,{FIELD_ID_MAX_CHARS}}}$"
_DAY = r"(?:19|20|21)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_FAST_DATE = rf"^{_DAY}$"
_FAST_INSTANT = rf"^{_DAY}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{{1,6}})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$"
_ZONED = r"(?:Z|[+-]\d\d:\d\d)$"
_CRS_MAX_CHARS = 512
# The string properties, read from every dict in one Arrow conversion (a missing key is null). Large types:
# a chunk of long (invalid) values may pass 2 GiB, which 32-bit offsets cannot address.
_STRING_PROPERTIES = pa.struct([(k, pa.large_string()) for k in ("field_id", "arrival_time", "processing_date", "crs")])
_ABSENT_DATA: dict = {}  # a missing `data` is {}; never mutated


def property_columns(items: list, rows: np.ndarray, lenient: list[int] = ()) -> PropertyColumns:
    """validate_properties' verdicts for the `rows` of `items`, as columns, with pydantic kept for the rest."""
    n = len(items)
    out = PropertyColumns(
        np.zeros(n, dtype=bool),
        pa.nulls(n, pa.string()),
        np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"),
        np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"),
        pa.nulls(n, pa.large_binary()),
        {},
        np.full(n, None, dtype=object),
    )
    candidates = rows.copy()
    candidates[list(lenient)] = False  # NaN and the like: only pydantic words those
    fast, ids, data = _fast_rows(items, np.flatnonzero(candidates), out)
    for i in np.flatnonzero(~candidates).tolist():
        crs = items[i].get("crs") if isinstance(items[i], dict) else None
        out.crs[i] = crs if isinstance(crs, str) and crs else None
    slow = np.flatnonzero(rows & ~out.valid)
    slow_rows, slow_ids, slow_data = [], [], []
    if len(slow):
        models, problems = validate_properties([items[i] for i in slow])
        for j, i in enumerate(slow.tolist()):
            model = models[j]
            if model is None:
                out.problems[i] = problems[j]
                continue
            out.valid[i] = True
            out.intended[i] = np.datetime64(model.processing_date, "D")
            out.arrival[i] = np.datetime64(model.arrival_time.replace(tzinfo=None), "us")
            slow_rows.append(i)
            slow_ids.append(model.field_id)
            slow_data.append(orjson.dumps(model.data, option=orjson.OPT_SORT_KEYS))
    if len(fast) or slow_rows:  # fast rows first, then slow ones, each put at its row
        at = np.full(n, -1, dtype=np.int64)
        at[fast] = np.arange(len(fast))
        at[slow_rows] = np.arange(len(fast), len(fast) + len(slow_rows))
        at = pa.array(at, mask=at < 0)
        out.field_id = pa.concat_arrays([ids, pa.array(slow_ids, pa.string())]).take(at)
        out.data = pa.concat_arrays([data, pa.array(slow_data, pa.large_binary())]).take(at)
    return out


def _fast_rows(items: list, rows: np.ndarray, out: PropertyColumns) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Fill `out` for the rows the fast checks accept, and `crs` for all `rows`.

    Returns the accepted rows with their field ids and data texts; the caller places those two, so no
    Python list per row is built here.
    """
    picked = items if len(rows) == len(items) else [items[i] for i in rows.tolist()]  # rows: distinct, sorted
    ok = np.ones(len(picked), dtype=bool)

    def strings(values: list) -> pa.Array:
        """Strings as Arrow (null where absent); any other type sends its row to pydantic."""
        try:
            return pa.array(values, pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            ok[[j for j, v in enumerate(values) if not (type(v) is str or v is None)]] = False
            return pa.array([v if type(v) is str else None for v in values], pa.large_string())

    def matches(arr: pa.Array, pattern: str) -> np.ndarray:
        return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)

    try:
        columns = pa.array(picked, _STRING_PROPERTIES).flatten()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value that is not a string: find it, column by column
        columns = [strings([p.get(k) for p in picked]) for k in _STRING_PROPERTIES.names]
    id_arr, arrival_arr, date_arr, crs_arr = columns
    data = _data_texts(picked, ok)
    ok &= matches(id_arr, _FAST_ID)  # an absent one too fails these three
    ok &= ~pc.fill_null(pc.is_in(id_arr, pa.array([".", ".."], pa.large_string())), False).to_numpy(
        zero_copy_only=False
    )
    ok &= matches(arrival_arr, _FAST_INSTANT)
    ok &= matches(date_arr, _FAST_DATE)
    crs_len = pc.fill_null(pc.utf8_length(crs_arr), 0).to_numpy(zero_copy_only=False)
    ok &= crs_arr.is_null().to_numpy(zero_copy_only=False) | ((crs_len >= 1) & (crs_len <= _CRS_MAX_CHARS))
    named = np.flatnonzero(crs_len > 0)
    out.crs[rows[named]] = crs_arr.take(named).to_numpy(zero_copy_only=False)
    sel = np.flatnonzero(ok)
    none = (rows[:0], pa.array([], pa.string()), data[:0])
    if len(sel) == 0:
        return none
    # A naive instant is UTC (FieldProperties' rule); Arrow wants the zone spelled out. Accepted values are
    # short: plain strings from here on.
    instants = arrival_arr.take(sel).cast(pa.string())
    zoned = pc.match_substring_regex(instants, _ZONED)
    instants = pc.if_else(zoned, instants, pc.binary_join_element_wise(instants, pa.scalar("Z"), ""))
    try:
        arrival_us = instants.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
        intended_days = date_arr.take(sel).cast(pa.date32()).cast(pa.int32()).to_numpy()
    except (pa.ArrowInvalid, ValueError):  # e.g. 31 February: leave the whole chunk's verdicts to pydantic
        return none
    target = rows[sel]
    out.valid[target] = True
    out.arrival[target] = arrival_us.astype("datetime64[us]")
    out.intended[target] = intended_days.astype("datetime64[D]")
    return target, id_arr.take(sel).cast(pa.string()), data.take(sel)


def _data_texts(picked: list, ok: np.ndarray) -> pa.Array:
    """orjson's sorted-keys text of each `data`; a row whose `data` is not an object is not `ok`."""
    dumps, sort_keys, absent = orjson.dumps, orjson.OPT_SORT_KEYS, _ABSENT_DATA
    try:
        texts = pa.array([dumps(p.get("data", absent), option=sort_keys) for p in picked], pa.large_binary())
    except orjson.JSONEncodeError:  # e.g. nested deeper than orjson writes: find the rows, one at a time
        values = []
        for p in picked:
            try:
                values.append(dumps(p.get("data", absent), option=sort_keys))
            except orjson.JSONEncodeError:
                values.append(None)
        texts = pa.array(values, pa.large_binary())
    # Of what JSON decodes to, only an object is written starting with "{".
    ok &= pc.fill_null(pc.starts_with(texts, "{"), False).to_numpy(zero_copy_only=False)
    return texts


_MAX_ARRAY_BYTES = 2**31 - 1  # what the 32-bit offsets of a string array address


def _value_offsets(values: pa.Array) -> np.ndarray:
    """Where each value of a string/binary array starts in its data buffer, and where the last one ends."""
    wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64 if wide else np.int32)
    return offsets[values.offset : values.offset + len(values) + 1]


def _utf8_column(texts: pa.Array) -> pa.ChunkedArray:
    """large_binary UTF-8 texts as the published string type: one chunk, or more if they pass 2 GiB."""
    if len(texts) == 0:
        return pa.chunked_array([], pa.string())
    ends = _value_offsets(texts)
    chunks, start = [], 0
    while start < len(texts):
        end = max(int(np.searchsorted(ends, ends[start] + _MAX_ARRAY_BYTES, side="right")) - 1, start + 1)
        chunks.append(texts[start:end].cast(pa.string()))
        start = end
    return pa.chunked_array(chunks, pa.string())


def reject_line(source_key: str, line: int, text: bytes, problems: list[tuple[Reason, str]]) -> bytes:
    """A quarantine record: a GeoJSON Feature with null geometry, so QGIS/GDAL can open the file."""
    raw = text.decode("utf-8", errors="replace")
    props = {
        "source_key": source_key,
        "source_line": line,
        "reason_codes": sorted({r.value for r, _ in problems}),
        "reasons": [{"code": r.value, "message": m} for r, m in problems],
        "raw": raw,
    }
    return orjson.dumps({"type": "Feature", "geometry": None, "properties": props})


def winners(keys: pa.Table) -> np.ndarray:
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
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
        chosen = _first_per_group(keys, codes, exact=True)
    return np.sort(chosen)


def _first_per_group(keys: pa.Table, id_codes: np.ndarray, exact: bool) -> np.ndarray | None:
    """Seq of the latest record per (date, id code). Codes that are not `exact` (hashes) are checked
    against the ids: None if two different ids share one."""
    date = keys["processing_date"].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)
    arrival = keys["arrival_time"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    seq = keys["seq"].combine_chunks().to_numpy(zero_copy_only=False)
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


def _string_hashes(values: pa.ChunkedArray) -> np.ndarray:
    """sum(byte[i] * B**i) mod 2**64 of each string's UTF-8 bytes, mixed with its length: a block of
    strings at a time, straight from the Arrow buffers."""
    out = np.zeros(len(values), dtype=np.uint64)
    at = 0
    powers = np.ones(1, dtype=np.uint64)
    for chunk in values.chunks:
        n = len(chunk)
        if n == 0:
            continue
        offsets = _value_offsets(chunk).astype(np.int64)
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
