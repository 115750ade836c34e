"""Backfill the partitions that received late fields, without waiting for a person.

What the sensor watches: `late_data/_batches/{D}/{detected_in}.parquet`, the compact copy of the late
fields for intended date D found by the run of `detected_in` (written in the same run as the per-field
`late_data/{D}/{field_id}.geojson|.txt` objects, from the same rows). Listing the per-field objects
would cost two keys per late field (a busy day: 200,000 keys, 200 LIST pages per tick) and a GET per
field to read them back; the batches are one key per (date, detecting run), so a tick is one or two
LIST pages even after years, and a backfill reads a few Parquet files instead of 100,000 objects.

Change detection: a date's late data is identified by the digest of its batch keys and ETags. The
cursor remembers the digest last seen per date; a date whose digest changed gets one run request,
unless its manifest shows the partition's last run already merged exactly those batches (its own
daily run merges the late fields it detected for itself). The run key is `late-data:{D}:{digest}`, so
the same tick evaluated twice asks for the same run, which Dagster launches once; a batch that lands
after the backfill ran changes the digest and asks for another run.

A run that fails after its request is not requested again for the same digest: instance run retries
(dagster.yaml / Helm) cover transient failures, and the next late batch for D, the daily schedule's
re-run, or a UI re-execution all merge every stored batch, so nothing is lost.
"""

import hashlib
import json
import logging
from collections import defaultdict
from typing import Any

import orjson
from dagster import (
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from geospatial_pipeline.defs import jobs
from geospatial_pipeline.defs.resources import LakeResource
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.store import ObjectStore

SENSOR_NAME = "late_data_backfill_sensor"
TRIGGER_TAG = "geospatial_pipeline/trigger"
DEFAULT_INTERVAL_SECONDS = 120


def late_batch_digest(items: list[tuple[str, str]]) -> str:
    """Identity of the late data stored for one date: its batch keys and their content hashes."""
    payload = "\n".join(f"{k} {etag}" for k, etag in sorted(items))
    return hashlib.sha256(payload.encode()).hexdigest()


def late_batches_by_date(store: ObjectStore) -> dict[str, list[tuple[str, str]]]:
    """One paginated listing of late_data/_batches/: (key, etag) per batch, grouped by intended date."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for info in store.list(keys.LATE_BATCHES_PREFIX):
        parsed = keys.parse_late_batch_key(info.key)
        if parsed is not None:
            found[parsed[0]].append((info.key, info.etag))
    return dict(found)


def merged_by_last_run(store: ObjectStore, date: str) -> set[tuple[str, str]]:
    """The late batches the last completed run of `date` published (from its manifest, written last)."""
    key = keys.manifest_key(date)
    if store.head(key) is None:
        return set()
    manifest = orjson.loads(store.get_bytes(key))
    return {(b["key"], b["etag"]) for b in manifest.get("merged_late_batches", [])}


def late_data_run_key(date: str, digest: str) -> str:
    """The run key of one date's backfill for one state of its late data (Dagster launches a key once)."""
    return f"late-data:{date}:{digest[:16]}"


def evaluate_late_data(
    store: ObjectStore,
    cursor: str | None,
    partitions_def: PartitionsDefinition[Any],
    log: logging.Logger | None = None,
) -> tuple[list[RunRequest], str]:
    """The sensor's decision as a plain function: (run requests, new cursor)."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    next_cursor: dict[str, str] = {}
    requests = []
    for date, items in sorted(late_batches_by_date(store).items()):
        digest = late_batch_digest(items)
        next_cursor[date] = digest  # only dates that still have batches: the cursor stays small
        if seen.get(date) == digest:
            continue
        if set(items) <= merged_by_last_run(store, date):
            continue  # the partition's last run already merged exactly these batches
        if not partitions_def.has_partition_key(date):
            if log is not None:
                log.warning(f"late data for {date}, which is not a partition of this code location")
            continue
        requests.append(
            RunRequest(
                run_key=late_data_run_key(date, digest),
                partition_key=date,
                tags={TRIGGER_TAG: "late-data", "geospatial_pipeline/late_batches": str(len(items))},
            )
        )
    return requests, json.dumps(next_cursor, sort_keys=True, separators=(",", ":"))


def build_late_data_sensor(
    partitions_def: PartitionsDefinition[Any], minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS
) -> SensorDefinition:
    """The sensor for the code location's partitions (dates outside them are logged and skipped)."""

    @sensor(
        name=SENSOR_NAME,
        job=jobs.publish_field_partition_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests one run of every partition whose late data (late_data/_batches/{date}/) "
        "changed since that partition was last published",
    )
    def late_data_backfill_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
        requests, cursor = evaluate_late_data(lake.store(), context.cursor, partitions_def, context.log)
        if not requests:
            return SensorResult(skip_reason=SkipReason("no partition received new late data"), cursor=cursor)
        context.log.info(f"late data changed for {', '.join(str(r.partition_key) for r in requests)}")
        return SensorResult(run_requests=requests, cursor=cursor)

    return late_data_backfill_sensor
