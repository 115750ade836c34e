"""What a field record's `properties` must hold, validated by Pydantic from the JSON text itself.

The model's rules are pydantic-core's own (patterns, lengths, ISO 8601 parsing), so `validate_json` runs
without a Python call per record; the few rules that need a whole column (a UTC instant that leaves the
calendar, an id longer than 200 bytes in UTF-8, NaN inside `data`) are applied to the columns after it.
Text Pydantic's parser refuses but Python's `json` reads (lone surrogate escapes, nesting past Pydantic's
limit) is decoded by `json` and validated by the same model, so it fails on the rule it breaks.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import core_schema as cs

from geospatial_pipeline.core.arrays import Bools, Datetimes, Objects
from geospatial_pipeline.core.reasons import Problems, Reason

FIELD_ID_MAX_CHARS = 128
FIELD_ID_MAX_BYTES = 200
CRS_MAX_CHARS = 512

# A key segment: no '/', '\', control or line-separator characters, not '.' or '..', no whitespace at either
# end (Rust regex: class intersections, no look-around).
_ANY = r"[^/\\\x00-\x1f\x7f\u{2028}\u{2029}]"
_EDGE = rf"[{_ANY}&&\S]"
_EDGE_NOT_DOT = rf"[{_ANY}&&\S&&[^.]]"
_FIELD_ID_PATTERN = rf"^(?:{_EDGE_NOT_DOT}|{_EDGE_NOT_DOT}{_EDGE}|\.{_EDGE_NOT_DOT}|{_EDGE}{_ANY}+{_EDGE})$"
_FIELD_ID_RULE = (
    f"must be 1-{FIELD_ID_MAX_CHARS} characters without '/', '\\' or control characters, "
    "not '.' or '..', without whitespace at either end"
)


def _custom(schema: cs.CoreSchema, kind: str, message: str) -> cs.CoreSchema:
    return cs.custom_error_schema(schema, custom_error_type=kind, custom_error_message=message)


class _FieldId:
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        text = cs.str_schema(min_length=1, max_length=FIELD_ID_MAX_CHARS, pattern=_FIELD_ID_PATTERN, strict=True)
        return _custom(text, "field_id", _FIELD_ID_RULE)


# Text that starts as an ISO 8601 date does: Pydantic alone would read "1700000000" as a Unix time.
_ISO_START = r"^\d{4}-\d\d-\d\d"


def _iso_string(what: str) -> cs.CoreSchema:
    return _custom(cs.str_schema(pattern=_ISO_START, strict=True), "iso_8601", f"must be an ISO 8601 {what} string")


class _Instant:
    """An ISO 8601 date and time; naive means UTC (converted to UTC with the columns)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        return cs.chain_schema([_iso_string("date and time"), cs.datetime_schema()])


class _IntendedDate:
    """A date (2025-01-02 or the basic 20250102), or a date and time whose UTC day is meant."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        day = cs.chain_schema([cs.str_schema(pattern=r"^\d{4}-\d\d-\d\d$", strict=True), cs.date_schema()])
        basic = cs.chain_schema(
            [cs.str_schema(pattern=r"^\d{8}$", strict=True), cs.no_info_plain_validator_function(dt.date.fromisoformat)]
        )
        instant = cs.chain_schema([_iso_string("date"), cs.datetime_schema()])
        return cs.union_schema(
            [day, basic, instant],
            mode="left_to_right",
            custom_error_type="iso_8601_date",
            custom_error_message="must be an ISO 8601 date, or date and time",
        )


class FieldProperties(BaseModel):
    """The `properties` member of one raw field Feature."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    field_id: Annotated[str, _FieldId]
    arrival_time: Annotated[dt.datetime, _Instant]
    processing_date: Annotated[dt.date | dt.datetime, _IntendedDate]
    crs: Annotated[str, Field(min_length=1, max_length=CRS_MAX_CHARS, strict=True)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)


_MODEL = TypeAdapter(FieldProperties)
_FIELD_REASONS = {
    "field_id": Reason.INVALID_FIELD_ID,
    "arrival_time": Reason.INVALID_ARRIVAL_TIME,
    "processing_date": Reason.INVALID_PROCESSING_DATE,
    "crs": Reason.INVALID_CRS_PROPERTY,
    "data": Reason.DATA_NOT_OBJECT,
}
_FIRST_US = -62135596800_000_000  # 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in µs since 1970
_LAST_US = 253402300799_999_999


@dataclass
class PropertyColumns:
    """Validated properties as columns (position k: the k-th text); rows not `valid` have `problems`."""

    valid: Bools
    field_id: pa.Array  # string, null where not valid
    intended: Datetimes  # datetime64[D]
    arrival: Datetimes  # datetime64[us], UTC
    data: pa.Array  # JSON text of `data`, keys sorted; null where not valid
    crs: Objects  # the `crs` property of valid rows (str), else None
    problems: Problems


@dataclass
class _Validated:
    """What the columns need from each validated model, gathered while the model is fresh in the cache."""

    rows: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    arrivals: list[dt.datetime] = field(default_factory=list)
    days: list[dt.date | dt.datetime] = field(default_factory=list)
    crs: list[str | None] = field(default_factory=list)
    data: list[bytes | None] = field(default_factory=list)


def property_columns(texts: list[bytes], nonfinite: Bools) -> PropertyColumns:
    """Validate each `properties` JSON text; `nonfinite` marks texts holding NaN or Infinity.

    Each model gives up its values (and its `data` as sorted JSON text) as soon as it is made and is then
    dropped: walking a chunk's models again afterwards cost about two thirds as much as validating them,
    the models being scattered over memory by then (docs/performance.md, "Properties")."""
    problems: Problems = {}
    out = _Validated()
    suspects = set(np.flatnonzero(nonfinite).tolist())
    validate = _MODEL.validate_json
    for k, text in enumerate(texts):
        try:
            model: FieldProperties | None = validate(text)
        except ValidationError as exc:
            model = _validate_decoded(k, text, exc, problems)
        if model is None:
            continue
        if k in suspects and _has_nan(model.data):
            problems[k] = [
                (Reason.DATA_NOT_OBJECT, "properties.data: contains NaN or Infinity, which JSON cannot hold")
            ]
            continue
        out.rows.append(k)
        out.ids.append(model.field_id)
        out.arrivals.append(model.arrival_time)
        out.days.append(model.processing_date)
        out.crs.append(model.crs)
        try:
            out.data.append(orjson.dumps(model.data, option=orjson.OPT_SORT_KEYS))
        except orjson.JSONEncodeError as error:
            problems[k] = [(Reason.DATA_NOT_OBJECT, f"properties.data: cannot be stored as JSON: {error}")]
            out.data.append(None)
    return _columns(len(texts), out, problems)


def _validate_decoded(k: int, text: bytes, exc: ValidationError, problems: Problems) -> FieldProperties | None:
    """A text Pydantic's parser refused as JSON is decoded by Python's json and validated again."""
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        try:
            return _MODEL.validate_python(json.loads(text))
        except ValidationError as again:
            exc = again
        except (ValueError, RecursionError) as error:
            problems[k] = [(Reason.NOT_A_FEATURE, f"properties: not readable JSON: {error}")]
            return None
    problems[k] = _reasons(exc)
    return None


def _reasons(exc: ValidationError) -> list[tuple[Reason, str]]:
    out = []
    for err in exc.errors(include_url=False):
        member = str(err["loc"][0]) if err["loc"] else ""
        reason = _FIELD_REASONS.get(member, Reason.NOT_A_FEATURE)
        out.append((reason, f"properties.{member}: {err['msg']}" if member else f"properties: {err['msg']}"))
    return out


def _columns(n: int, got: _Validated, problems: Problems) -> PropertyColumns:
    rows = got.rows
    ids = pa.array(got.ids, pa.string())
    arrival = pa.array(got.arrivals, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    arrival_us = arrival.to_numpy(zero_copy_only=False)
    days = got.days
    instants = [k for k, d in enumerate(days) if type(d) is not dt.date]  # a date and time: its UTC day
    at_instants = [days[k] for k in instants]
    for k in instants:
        days[k] = dt.date(1970, 1, 1)
    intended = pa.array(days, pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    intended_ok = np.ones(len(rows), dtype=bool)
    if instants:
        at = pa.array(at_instants, pa.timestamp("us", tz="UTC"))
        at_us = at.cast(pa.int64()).to_numpy(zero_copy_only=False)
        intended[instants] = (at_us // 86_400_000_000).astype("datetime64[D]")
        intended_ok[instants] = (at_us >= _FIRST_US) & (at_us <= _LAST_US)
    late_checks = (
        (
            pc.greater(pc.binary_length(ids.cast(pa.binary())), FIELD_ID_MAX_BYTES).to_numpy(zero_copy_only=False),
            Reason.INVALID_FIELD_ID,
            f"properties.field_id: must be at most {FIELD_ID_MAX_BYTES} bytes in UTF-8",
        ),
        (
            (arrival_us < _FIRST_US) | (arrival_us > _LAST_US),
            Reason.INVALID_ARRIVAL_TIME,
            "properties.arrival_time: lies outside the representable range once converted to UTC",
        ),
        (
            ~intended_ok,
            Reason.INVALID_PROCESSING_DATE,
            "properties.processing_date: lies outside the representable range once converted to UTC",
        ),
    )
    for mask, reason, message in late_checks:
        for j in np.flatnonzero(mask).tolist():
            problems.setdefault(rows[j], []).append((reason, message))
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    valid[list(problems)] = False
    at = np.full(n, -1, dtype=np.int64)
    at[rows] = np.arange(len(rows))
    at[~valid] = -1
    index = pa.array(at, mask=at < 0)
    out_arrival = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    out_arrival[rows] = arrival_us.astype("datetime64[us]")
    out_intended = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    out_intended[rows] = intended
    crs = np.full(n, None, dtype=object)
    crs[rows] = got.crs
    crs[~valid] = None
    return PropertyColumns(
        valid,
        ids.take(index),
        out_intended,
        out_arrival,
        pa.array(got.data, pa.large_binary()).take(index),
        crs,
        problems,
    )


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
