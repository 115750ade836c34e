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
import shapely

from geospatial_pipeline.core.lateness import Timing, classify_timing, late_reason
from geospatial_pipeline.core.reading import ParsedChunk
from geospatial_pipeline.core.records import Reason, validate_properties
from geospatial_pipeline.core.spatial import WGS84, SpatialRules, check_geometries

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
# Late rows also carry their RFC 7946 geometry (lon/lat) for the per-field GeoJSON objects.
LATE_SCHEMA = FIELD_SCHEMA.append(pa.field("geometry_geojson", pa.string(), nullable=False))


@dataclass(frozen=True)
class Rules:
    """Everything the rules depend on besides the data: built from settings by the shell."""

    partition_start: dt.date = dt.date(2025, 1, 1)
    lateness_window: dt.timedelta = dt.timedelta(days=1)
    max_clock_skew: dt.timedelta = dt.timedelta(minutes=10)
    spatial: SpatialRules = SpatialRules()


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

    models, prop_problems = validate_properties(parsed.properties)
    for i, problems in prop_problems.items():
        if not structural[i]:
            reasons.setdefault(i, []).extend(problems)

    good = np.array([m is not None for m in models], dtype=bool) & ~structural
    intended = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    arrival = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    idx = np.flatnonzero(good)
    intended[idx] = np.array([models[i].processing_date for i in idx], dtype="datetime64[D]")
    arrival[idx] = np.array([models[i].arrival_time.replace(tzinfo=None) for i in idx], dtype="datetime64[us]")

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

    crs_names = np.array([_crs_of(parsed.properties[i], parsed.collection_crs) for i in range(n)], dtype=object)
    spatial = check_geometries(parsed.geometries, crs_names, structural, rules.spatial)
    for i, problems in spatial.reasons.items():
        reasons.setdefault(i, []).extend(problems)

    rejected_mask = np.zeros(n, dtype=bool)
    rejected_mask[list(reasons)] = True
    accepted = ~rejected_mask
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    on_time_idx = np.flatnonzero(accepted & (timing == Timing.ON_TIME))
    late_idx = np.flatnonzero(accepted & (timing == Timing.LATE))

    def rows(sel: np.ndarray, late: bool) -> pa.Table:
        geoms = spatial.geometry[sel]
        bounds = shapely.bounds(geoms) if len(sel) else np.zeros((0, 4))
        columns = {
            "field_id": pa.array([models[i].field_id for i in sel], pa.string()),
            "processing_date": pa.array(intended[sel], pa.date32()),
            "arrival_time": pa.array(arrival[sel], pa.timestamp("us", tz="UTC")),
            "arrived_late": pa.array(np.full(len(sel), late)),
            "detected_in": pa.array(np.full(len(sel), np.datetime64(partition, "D")), pa.date32()),
            "late_reason": pa.array(
                [
                    late_reason(models[i].processing_date, models[i].arrival_time, partition, rules.lateness_window)
                    for i in sel
                ]
                if late
                else [None] * len(sel),
                pa.string(),
            ),
            "source_crs": pa.array(spatial.source_crs[sel].astype(str), pa.string()),
            "area_ha": pa.array(spatial.area_ha[sel]),
            "perimeter_m": pa.array(spatial.perimeter_m[sel]),
            "repaired": pa.array(spatial.repaired[sel]),
            "data": pa.array([orjson.dumps(models[i].data, option=orjson.OPT_SORT_KEYS) for i in sel], pa.binary()).cast(pa.string()),
            "source_key": pa.array([parsed.source_key] * len(sel), pa.string()),
            "source_line": pa.array(np.asarray(parsed.lines, dtype=np.int64)[sel]),
            "geometry": pa.array(shapely.to_wkb(geoms, output_dimension=2), pa.binary()) if len(sel) else pa.array([], pa.binary()),
            "bbox": pa.StructArray.from_arrays([pa.array(bounds[:, k]) for k in range(4)], fields=list(BBOX_TYPE)),
        }
        table = pa.table(columns, schema=FIELD_SCHEMA)
        table = table.append_column("seq", pa.array(seq[sel]))
        if late:
            geojson = shapely.to_geojson(spatial.geometry_wgs84[sel]) if len(sel) else np.array([], dtype=object)
            table = table.append_column("geometry_geojson", pa.array(geojson, pa.string()))
        return table

    rejected_lines = []
    counts: Counter = Counter()
    for i in sorted(reasons):
        problems = reasons[i]
        counts.update({r.value for r, _ in problems})
        rejected_lines.append(reject_line(parsed.source_key, parsed.lines[i], parsed.texts[i], problems))
    return ChunkOutcome(rows(on_time_idx, False), rows(late_idx, True), rejected_lines, counts)


def _crs_of(props, collection_crs: str | None) -> str:
    crs = props.get("crs") if isinstance(props, dict) else None
    return crs if isinstance(crs, str) and crs else (collection_crs or DEFAULT_CRS)


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
    """Seq numbers of the records that survive deduplication.

    `keys` has processing_date, field_id, arrival_time (as int64 or timestamp) and seq. Per
    (processing_date, field_id) the latest arrival_time wins; on a tie the later record in input order.
    """
    if keys.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    order = pc.sort_indices(
        keys,
        sort_keys=[
            ("processing_date", "ascending"),
            ("field_id", "ascending"),
            ("arrival_time", "descending"),
            ("seq", "descending"),
        ],
    )
    ordered = keys.take(order)
    date = ordered["processing_date"].to_numpy()
    fid = ordered["field_id"]
    first = np.ones(ordered.num_rows, dtype=bool)
    if ordered.num_rows > 1:
        same_date = date[1:] == date[:-1]
        same_id = pc.equal(fid.slice(1), fid.slice(0, ordered.num_rows - 1)).to_numpy(zero_copy_only=False)
        first[1:] = ~(same_date & same_id)
    return np.sort(ordered["seq"].to_numpy()[first])
