"""What a raw field record must look like, and the reason codes for the ones that don't."""

from __future__ import annotations

import datetime as dt
import math
import re
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

FIELD_ID_MAX_CHARS = 128
FIELD_ID_MAX_BYTES = 200


class Reason(StrEnum):
    """Machine-readable reason codes for quarantined records. Values are part of the data contract."""

    MALFORMED_JSON = "malformed_json"
    NOT_A_FEATURE = "not_a_feature"
    RECORD_TOO_LARGE = "record_too_large"
    FILE_UNREADABLE = "file_unreadable"
    UNSUPPORTED_FILE = "unsupported_file"
    INVALID_FIELD_ID = "invalid_field_id"
    INVALID_ARRIVAL_TIME = "invalid_arrival_time"
    INVALID_PROCESSING_DATE = "invalid_processing_date"
    INVALID_CRS_PROPERTY = "invalid_crs_property"
    DATA_NOT_OBJECT = "data_not_object"
    ARRIVAL_BEFORE_INTENDED_DATE = "arrival_before_intended_date"
    ARRIVAL_IN_FUTURE = "arrival_in_future"
    FUTURE_PARTITION = "future_partition"
    BEFORE_PARTITION_START = "before_partition_start"
    GEOMETRY_MISSING = "geometry_missing"
    GEOMETRY_UNPARSEABLE = "geometry_unparseable"
    GEOMETRY_EMPTY = "geometry_empty"
    GEOMETRY_NON_FINITE = "geometry_non_finite"
    GEOMETRY_NOT_2D = "geometry_not_2d"
    TOO_MANY_VERTICES = "too_many_vertices"
    GEOMETRY_TYPE_NOT_ALLOWED = "geometry_type_not_allowed"
    GEOMETRY_INVALID = "geometry_invalid"
    CRS_UNKNOWN = "crs_unknown"
    OUTSIDE_CRS_AREA_OF_USE = "outside_crs_area_of_use"
    OUTSIDE_BOUNDS = "outside_bounds"


# Which Pydantic field maps to which reason code when it fails.
_FIELD_REASONS = {
    "field_id": Reason.INVALID_FIELD_ID,
    "arrival_time": Reason.INVALID_ARRIVAL_TIME,
    "processing_date": Reason.INVALID_PROCESSING_DATE,
    "crs": Reason.INVALID_CRS_PROPERTY,
    "data": Reason.DATA_NOT_OBJECT,
}


_UNSAFE_CHARS = re.compile(r"[/\\\x00-\x1f\x7f\u2028\u2029]")


def _safe_key_segment(value: str) -> str:
    """A field id becomes an object-key segment: it must never name another folder."""
    if _UNSAFE_CHARS.search(value):
        raise ValueError("must not contain '/', '\\' or control characters")
    if value in (".", "..") or value != value.strip():
        raise ValueError("must not be '.', '..' or carry leading/trailing whitespace")
    if len(value.encode("utf-8")) > FIELD_ID_MAX_BYTES:
        raise ValueError(f"must be at most {FIELD_ID_MAX_BYTES} bytes in UTF-8")
    return value


_NUMERIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _string_only(value: Any) -> Any:
    # Pydantic reads numbers, and numeric strings, as Unix times; the contract says ISO 8601 text.
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 string, got {type(value).__name__}")
    if _NUMERIC.fullmatch(value):
        raise ValueError(f"must be an ISO 8601 date or time, not a number: {value[:40]!r}")
    return value


def _to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 lies past the last representable UTC instant
        raise ValueError("lies outside the representable range once converted to UTC") from None


def _intended_date(value: Any) -> dt.date:
    """`processing_date` is a date, or a datetime whose UTC calendar day is the partition."""
    if isinstance(value, str) and len(value) in (8, 10) and value[:4].isdigit():
        return dt.date.fromisoformat(value)  # 2025-01-02, or ISO 8601's basic form 20250102
    text = _string_only(value)
    return _to_utc(_DATETIME.validate_python(text)).date()


_DATETIME = TypeAdapter(dt.datetime)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    """`data` is published as JSON text: it must survive encoding (depth, lone surrogates, NaN)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot be stored as JSON: {exc}") from None
    if _has_nan(value):
        raise ValueError("contains NaN or Infinity, which JSON cannot hold")
    return value


def _has_nan(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


FieldId = Annotated[
    str,
    Field(min_length=1, max_length=FIELD_ID_MAX_CHARS),
    AfterValidator(_safe_key_segment),
]
UtcDatetime = Annotated[dt.datetime, BeforeValidator(_string_only), AfterValidator(_to_utc)]
IntendedDate = Annotated[dt.date, BeforeValidator(_intended_date)]


class FieldProperties(BaseModel):
    """The `properties` member of one raw field Feature."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    field_id: FieldId
    arrival_time: UtcDatetime
    processing_date: IntendedDate
    crs: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    data: Annotated[dict[str, Any], AfterValidator(_json_object)] = Field(default_factory=dict)


_BATCH = TypeAdapter(list[FieldProperties])


def validate_properties(
    items: list[Any],
) -> tuple[list[FieldProperties | None], dict[int, list[tuple[Reason, str]]]]:
    """Validate a whole batch in two calls into pydantic-core instead of one call per record.

    Returns the models (None where invalid) and, per invalid index, its reasons with messages.
    """
    models: list[FieldProperties | None] = [None] * len(items)
    problems: dict[int, list[tuple[Reason, str]]] = {}
    try:
        good = _BATCH.validate_python(items)
        return list(good), problems
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            index = int(loc[0])
            field = str(loc[1]) if len(loc) > 1 else ""
            reason = _FIELD_REASONS.get(field, Reason.NOT_A_FEATURE)
            message = f"properties.{field}: {err['msg']}" if field else f"properties: {err['msg']}"
            problems.setdefault(index, []).append((reason, message))
    keep = [i for i in range(len(items)) if i not in problems]
    for i, model in zip(keep, _BATCH.validate_python([items[i] for i in keep]), strict=True):
        models[i] = model
    return models, problems
