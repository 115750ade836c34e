"""Every object key of the lake, built from validated segments.

Keys here are relative to the lake root; a store prepends its prefix. A segment can never contain a
separator, a dot-segment or a control character, so no field id or date can reach outside its folder.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc

_BAD_SEGMENT = re.compile(r"[/\\\x00-\x1f\x7f]")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY = r"([0-9]{4}-[0-9]{2}-[0-9]{2})"
_LATE_BATCH = re.compile(rf"late_data/_batches/{_DAY}/{_DAY}\.parquet")


class UnsafeKeyError(ValueError):
    """A key segment that could escape its folder."""


def segment(value: str) -> str:
    if not isinstance(value, str) or not value or value in (".", "..") or _BAD_SEGMENT.search(value):
        raise UnsafeKeyError(f"unsafe object key segment: {value!r}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no valid UTF-8 key can hold it
        raise UnsafeKeyError(f"object key segment is not valid Unicode: {value!r}") from None
    if size > 255:
        raise UnsafeKeyError(f"object key segment longer than 255 bytes: {value[:40]!r}...")
    return value


def key(*segments: str) -> str:
    """The one place a key is assembled."""
    return "/".join(segment(s) for s in segments)


def day(value: dt.date | str) -> str:
    """A partition date as a key segment: a date, or a real YYYY-MM-DD date string (ASCII digits)."""
    if isinstance(value, str):
        if not _ISO_DAY.fullmatch(value):
            raise UnsafeKeyError(f"partition dates must be YYYY-MM-DD, got {value[:40]!r}")
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise UnsafeKeyError(f"not a calendar date: {value!r}") from None
    # A datetime is a date too, but its isoformat() is no day segment.
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise UnsafeKeyError(f"partition dates must be dates, got {type(value).__name__}")
    return value.isoformat()


def raw_prefix(partition: dt.date | str) -> str:
    return key("raw", day(partition)) + "/"


def fields_key(partition: dt.date | str) -> str:
    return key("fields", f"date={day(partition)}", "fields.parquet")


def late_object_key(intended: dt.date | str, field_id: str, suffix: str) -> str:
    return key("late_data", day(intended), segment(field_id) + suffix)


def late_object_keys(
    intended: pa.Array | pa.ChunkedArray, field_ids: pa.Array | pa.ChunkedArray, suffixes: tuple[str, ...]
) -> list[list[str]]:
    """late_object_key for whole columns (date32 dates, string ids), one list of keys per suffix: the same
    checks, done once on the columns (the longest suffix decides whether a key is too long).

    A row that fails them is handed to late_object_key, so the error is the one a single key would raise.
    """
    longest = max(len(suffix.encode()) for suffix in suffixes)
    bad = pc.or_kleene(
        pc.or_kleene(pc.is_null(field_ids), pc.is_null(intended)),
        pc.or_kleene(
            pc.or_kleene(
                pc.is_in(field_ids, pa.array(["", ".", ".."])), pc.greater(pc.binary_length(field_ids), 255 - longest)
            ),
            pc.match_substring_regex(field_ids, _BAD_SEGMENT.pattern),
        ),
    )
    if pc.any(bad).as_py():
        at = pc.index(bad, True).as_py()
        for suffix in suffixes:
            late_object_key(intended[at].as_py(), field_ids[at].as_py(), suffix)
        raise UnsafeKeyError(f"unsafe late object key for field {field_ids[at].as_py()!r}")  # not reached
    stems = pc.binary_join_element_wise("late_data", pc.cast(intended, pa.string()), field_ids, "/")
    return [pc.binary_join_element_wise(stems, suffix, "").to_pylist() for suffix in suffixes]


LATE_BATCHES_PREFIX = "late_data/_batches/"


def late_batch_key(intended: dt.date | str, detected_in: dt.date | str) -> str:
    return key("late_data", "_batches", day(intended), f"{day(detected_in)}.parquet")


def late_batches_prefix(intended: dt.date | str) -> str:
    return key("late_data", "_batches", day(intended)) + "/"


def parse_late_batch_key(relative_key: str) -> tuple[str, str] | None:
    """(intended date, detected-in date) of a late batch key, or None for any other key."""
    m = _LATE_BATCH.fullmatch(relative_key)
    if m is None:
        return None
    try:  # a stray object such as 2025-13-45 is not a batch, rather than a crash of whoever lists
        return day(m.group(1)), day(m.group(2))
    except UnsafeKeyError:
        return None


def rejected_key(partition: dt.date | str) -> str:
    return key("rejected", day(partition), "rejected.geojsonl")


def manifest_key(partition: dt.date | str) -> str:
    return key("manifests", f"{day(partition)}.json")
