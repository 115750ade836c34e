"""One chunk of a partition's batch through every rule → typed Arrow rows per outcome.

The storage side (lake/) streams chunks in and the tables out; everything decided about a record is
decided here, so a test can drive the whole rule set with bytes and a date.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.arrays import Bools, Datetimes, Int8s, Int64s
from geospatial_pipeline.core.features import ParsedChunk
from geospatial_pipeline.core.geometry.checks import SpatialResult, check_geometries
from geospatial_pipeline.core.lateness import Timing, classify_timing, iso_utc_texts
from geospatial_pipeline.core.reasons import Problems, Reason
from geospatial_pipeline.core.rules import WGS84, Rules
from geospatial_pipeline.core.schema import BBOX_TYPE, FIELD_SCHEMA, utf8_column


@dataclass
class ChunkOutcome:
    on_time: pa.Table
    late: pa.Table
    rejected: list[bytes]  # GeoJSONSeq lines, one per rejected record
    reason_counts: Counter[str] = field(default_factory=Counter)  # Reason values
    star_hits: int = 0  # geometries found valid by the star-shaped shortcut, without GEOS

    @property
    def records(self) -> int:
        rows: int = self.on_time.num_rows + self.late.num_rows
        return rows + len(self.rejected)


def classify_chunk(
    parsed: ParsedChunk,
    partition: dt.date,
    rules: Rules,
    now: dt.datetime,
    first_seq: int = 0,
) -> ChunkOutcome:
    """Apply identity, time, spatial and lateness rules to one parsed chunk."""
    n = len(parsed.texts)
    problems: Problems = {i: list(r) for i, r in parsed.problems.items()}
    props = parsed.properties
    timing = _time_rules(props.valid, props.intended, props.arrival, partition, rules, now, problems)

    crs_names = np.where(parsed.crs == None, WGS84, parsed.crs)  # noqa: E711 - elementwise comparison
    spatial = check_geometries(parsed.shapes, parsed.has_z, crs_names, rules.spatial, n)
    for i, reasons in spatial.problems.items():
        problems.setdefault(i, []).extend(reasons)

    accepted = np.ones(n, dtype=bool)
    accepted[list(problems)] = False
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    on_time = _rows(
        np.flatnonzero(accepted & (timing == Timing.ON_TIME)), False, parsed, spatial, seq, partition, rules
    )
    late = _rows(np.flatnonzero(accepted & (timing == Timing.LATE)), True, parsed, spatial, seq, partition, rules)

    rejected_lines = []
    counts: Counter[str] = Counter()
    for i in sorted(problems, key=lambda i: (parsed.lines[i], i)):  # source order, however the file was chunked
        reasons = problems[i]
        counts.update({r.value for r, _ in reasons})
        rejected_lines.append(reject_line(parsed.source_key, int(parsed.lines[i]), parsed.texts[i], reasons))
    return ChunkOutcome(on_time, late, rejected_lines, counts, spatial.star_hits)


def _time_rules(
    good: Bools,
    intended: Datetimes,
    arrival: Datetimes,
    partition: dt.date,
    rules: Rules,
    now: dt.datetime,
    problems: Problems,
) -> Int8s:
    """The time rules on records with valid properties (reasons into `problems`); each record's timing."""

    def flag(mask: Bools, reason: Reason, message: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask).tolist():
            problems.setdefault(i, []).append((reason, message(i)))

    flag(
        good & (arrival < intended.astype("datetime64[us]")),
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
    idx = np.flatnonzero(good)
    timing = np.full(len(good), Timing.ON_TIME, dtype=np.int8)
    timing[idx] = classify_timing(intended[idx], arrival[idx], partition, rules.lateness_window)
    flag(
        good & (timing == Timing.FUTURE),
        Reason.FUTURE_PARTITION,
        lambda i: f"intended date {intended[i]} is after the partition being processed ({partition})",
    )
    return timing


def _rows(
    sel: Int64s,
    late: bool,
    parsed: ParsedChunk,
    spatial: SpatialResult,
    seq: Int64s,
    partition: dt.date,
    rules: Rules,
) -> pa.Table:
    """The published columns of records `sel` (and `seq`; late rows also their lon/lat GeoJSON)."""
    props = parsed.properties
    wkb, bounds, geojson = spatial.encoded(sel, with_geojson=late)
    intended, arrival = props.intended[sel], props.arrival[sel]
    index = pa.array(sel)
    columns = {
        "field_id": props.field_id.take(index),
        "processing_date": pa.array(intended, pa.date32()),
        "arrival_time": pa.array(arrival, pa.timestamp("us", tz="UTC")),
        "arrived_late": pa.array(np.full(len(sel), late)),
        "detected_in": pa.array(np.full(len(sel), np.datetime64(partition, "D")), pa.date32()),
        "late_reason": (
            late_reasons(intended, arrival, partition, rules.lateness_window)
            if late
            else pa.nulls(len(sel), pa.string())
        ),
        "source_crs": pa.array(spatial.source_crs[sel], pa.string()),
        "area_ha": pa.array(spatial.area_ha[sel]),
        "perimeter_m": pa.array(spatial.perimeter_m[sel]),
        "repaired": pa.array(spatial.repaired[sel]),
        "data": utf8_column(props.data.take(index)),
        "source_key": pa.repeat(pa.scalar(parsed.source_key, pa.string()), len(sel)),
        "source_line": pa.array(parsed.lines[sel]),
        "geometry": wkb,
        "bbox": pa.StructArray.from_arrays([pa.array(bounds[:, k]) for k in range(4)], fields=list(BBOX_TYPE)),
    }
    table = pa.table(columns, schema=FIELD_SCHEMA).append_column("seq", pa.array(seq[sel]))
    if late:
        table = table.append_column("geometry_geojson", pa.array(geojson, pa.string()))
    return table


def late_reasons(intended: Datetimes, arrival: Datetimes, partition: dt.date, window: dt.timedelta) -> pa.Array:
    """Why each row is late, in words a person reads in the late object (`intended` datetime64[D],
    `arrival` [us], UTC), built a column at a time."""
    if len(intended) == 0:
        return pa.array([], pa.string())
    days = pa.array(np.datetime_as_string(intended, unit="D"), pa.string())
    delivered = pc.binary_join_element_wise(
        f"delivered in partition {partition.isoformat()}, after its intended partition ", days, ""
    )
    starts: Datetimes = intended.astype("datetime64[us]")
    closes = starts + np.timedelta64(window, "us")
    arrived = pc.binary_join_element_wise(
        "arrived ",
        pa.array(iso_utc_texts(arrival), pa.string()),
        ", after the lateness window closed at ",
        pa.array(iso_utc_texts(closes), pa.string()),
        "",
    )
    return pc.if_else(pa.array(intended < np.datetime64(partition, "D")), delivered, arrived)


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
