"""Asset checks, evaluated in the run that publishes the partition: they read back what was written.

The asset declares them (`check_specs`) and yields their results (`evaluate_checks`); both take the keys
of the assets they check, which are defined beside the assets in `defs/assets.py`.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from geospatial_pipeline.lake.publish import OUTCOMES, PartitionReport
from geospatial_pipeline.lake.store import ObjectStore

GEOPARQUET_VALID = "geoparquet_metadata_valid"
RECORDS_CONSERVED = "records_conserved"
REJECTED_RATIO = "rejected_ratio_within_threshold"


def check_specs(fields: AssetKey, rejected: AssetKey) -> list[AssetCheckSpec]:
    """The checks of the published fields (`fields`) and of the quarantine (`rejected`)."""
    return [
        AssetCheckSpec(
            GEOPARQUET_VALID,
            asset=fields,
            description="The published file's `geo` metadata is GeoParquet 1.1 and matches its rows",
        ),
        AssetCheckSpec(RECORDS_CONSERVED, asset=fields, description="Every input record ends in exactly one outcome"),
        AssetCheckSpec(
            REJECTED_RATIO,
            asset=rejected,
            description="Share of rejected records is at most max_rejected_ratio (warns)",
        ),
    ]


def geo_metadata_problems(geo: dict | None, rows: int) -> list[str]:
    """Structural GeoParquet 1.1 rules for our single-column layout; empty list means valid."""
    if not geo:
        return ["no `geo` key in the Parquet file metadata"]
    problems = []
    if geo.get("version") != "1.1.0":
        problems.append(f"version is {geo.get('version')!r}, expected '1.1.0'")
    primary = geo.get("primary_column")
    column = geo.get("columns", {}).get(primary or "")
    if not column:
        return problems + [f"primary_column {primary!r} has no entry in columns"]
    if column.get("encoding") != "WKB":
        problems.append("encoding is not WKB")
    if not isinstance(column.get("geometry_types"), list):
        problems.append("geometry_types is not a list")
    if not isinstance(column.get("crs"), dict):
        problems.append("crs is not PROJJSON")
    if column.get("orientation") != "counterclockwise":
        problems.append("orientation is not declared counterclockwise")
    covering = column.get("covering", {}).get("bbox", {})
    if sorted(covering) != ["xmax", "xmin", "ymax", "ymin"]:
        problems.append("bbox covering is incomplete")
    bbox = column.get("bbox")
    if rows and not (isinstance(bbox, list) and len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        problems.append(f"bbox {bbox!r} is not [xmin, ymin, xmax, ymax]")
    return problems


def _parquet_footer(store: ObjectStore, key: str) -> tuple[int, dict]:
    """Row count and key-value metadata, read from the footer alone (ranged reads on S3)."""
    with store.open_seekable(key) as f:
        meta = pq.ParquetFile(f).metadata
    return meta.num_rows, meta.metadata or {}


def conservation_problems(store: ObjectStore, report: PartitionReport) -> tuple[list[str], dict]:
    """Recount every outcome from what was written, not from the run's own tallies."""
    counts = report.counts
    found = {
        "published_rows": _parquet_footer(store, report.outputs["fields"]["key"])[0],
        "late": sum(_parquet_footer(store, b["key"])[0] for b in report.outputs["late_batches"]),
        "rejected": sum(1 for line in store.get_bytes(report.outputs["rejected"]["key"]).splitlines() if line),
    }
    problems = [
        f"{name}: manifest says {counts[name]}, storage holds {n}" for name, n in found.items() if counts[name] != n
    ]
    if counts["published_rows"] != counts["on_time"] - counts["late_replaced_on_time"] + counts["merged_late"]:
        problems.append("published rows are not on-time minus replaced plus merged late fields")
    accounted = sum(counts[k] for k in OUTCOMES)
    if accounted != counts["input_records"]:
        problems.append(f"{counts['input_records']} input records but {accounted} outcomes")
    return problems, found


def evaluate_checks(
    store: ObjectStore, report: PartitionReport, max_rejected_ratio: float, *, fields: AssetKey, rejected: AssetKey
) -> list[AssetCheckResult]:
    """The results of `check_specs(fields, rejected)` for the run that `report` describes."""
    rows, metadata = _parquet_footer(store, report.outputs["fields"]["key"])
    geo = json.loads(metadata[b"geo"]) if b"geo" in metadata else None
    problems = geo_metadata_problems(geo, rows)
    lost, recounted = conservation_problems(store, report)
    counts = report.counts
    ratio = counts["rejected"] / counts["input_records"] if counts["input_records"] else 0.0
    return [
        AssetCheckResult(
            check_name=GEOPARQUET_VALID,
            asset_key=fields,
            passed=not problems,
            metadata={"problems": "; ".join(problems) or "none", "rows": rows},
        ),
        AssetCheckResult(
            check_name=RECORDS_CONSERVED,
            asset_key=fields,
            passed=not lost,
            metadata={
                "problems": "; ".join(lost) or "none",
                "input_records": counts["input_records"],
                **{f"stored_{k}": v for k, v in recounted.items()},
            },
        ),
        AssetCheckResult(
            check_name=REJECTED_RATIO,
            asset_key=rejected,
            passed=ratio <= max_rejected_ratio,
            severity=AssetCheckSeverity.WARN,
            metadata={"rejected_ratio": round(ratio, 6), "threshold": max_rejected_ratio},
        ),
    ]
