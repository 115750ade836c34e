"""Every object key of the lake, built from validated segments.

Keys here are relative to the lake root; a store prepends its prefix. A segment can never contain a
separator, a dot-segment or a control character, so no field id or date can reach outside its folder.
"""

from __future__ import annotations

import datetime as dt
import re

_BAD_SEGMENT = re.compile(r"[/\\\x00-\x1f\x7f]")


class UnsafeKeyError(ValueError):
    """A key segment that could escape its folder."""


def segment(value: str) -> str:
    if not isinstance(value, str) or not value or value in (".", "..") or _BAD_SEGMENT.search(value):
        raise UnsafeKeyError(f"unsafe object key segment: {value!r}")
    if len(value.encode("utf-8")) > 255:
        raise UnsafeKeyError(f"object key segment longer than 255 bytes: {value[:40]!r}...")
    return value


def key(*segments: str) -> str:
    """The one place a key is assembled."""
    return "/".join(segment(s) for s in segments)


def day(value: dt.date | str) -> str:
    """A partition date as a key segment; strings must be real ISO dates."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
        if value is None:
            raise UnsafeKeyError("partition dates must be YYYY-MM-DD")
    return value.isoformat()


def raw_prefix(partition: dt.date | str) -> str:
    return key("raw", day(partition)) + "/"


def fields_key(partition: dt.date | str) -> str:
    return key("fields", f"date={day(partition)}", "fields.parquet")


def late_object_key(intended: dt.date | str, field_id: str, suffix: str) -> str:
    return key("late_data", day(intended), segment(field_id) + suffix)


LATE_BATCHES_PREFIX = "late_data/_batches/"


def late_batch_key(intended: dt.date | str, detected_in: dt.date | str) -> str:
    return key("late_data", "_batches", day(intended), f"{day(detected_in)}.parquet")


def late_batches_prefix(intended: dt.date | str) -> str:
    return key("late_data", "_batches", day(intended)) + "/"


def parse_late_batch_key(relative_key: str) -> tuple[str, str] | None:
    """(intended date, detected-in date) of a late batch key, or None for any other key."""
    m = re.fullmatch(r"late_data/_batches/(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})\.parquet", relative_key)
    return (m.group(1), m.group(2)) if m else None


def rejected_key(partition: dt.date | str) -> str:
    return key("rejected", day(partition), "rejected.geojsonl")


def manifest_key(partition: dt.date | str) -> str:
    return key("manifests", f"{day(partition)}.json")
