"""Backfill the partitions that received late fields, without waiting for a person."""

import hashlib
import json
from collections import defaultdict

import orjson
from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from geospatial_pipeline.defs.resources import LakeResource
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.store import ObjectStore


def late_batch_digest(items: list[tuple[str, str]]) -> str:
    """Identity of the late data stored for one date: its batch keys and their content hashes."""
    payload = "\n".join(f"{k} {etag}" for k, etag in sorted(items))
    return hashlib.sha256(payload.encode()).hexdigest()


def late_batches_by_date(store: ObjectStore) -> dict[str, list[tuple[str, str]]]:
    """One paginated listing of late_data/_batches/: one small object per (intended date, detecting run)."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for info in store.list(keys.LATE_BATCHES_PREFIX):
        parsed = keys.parse_late_batch_key(info.key)
        if parsed is not None:
            found[parsed[0]].append((info.key, info.etag))
    return found


def merged_by_last_run(store: ObjectStore, date: str) -> set[tuple[str, str]]:
    """The late batches the last completed run of `date` already published (from its manifest)."""
    key = keys.manifest_key(date)
    if store.head(key) is None:
        return set()
    manifest = orjson.loads(store.get_bytes(key))
    return {(b["key"], b["etag"]) for b in manifest.get("merged_late_batches", [])}


def build_late_data_sensor(job, partitions_def):
    @sensor(
        name="late_data_backfill_sensor",
        job=job,
        minimum_interval_seconds=120,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests a run of every partition whose late data changed since it was last published",
    )
    def late_data_backfill_sensor(context: SensorEvaluationContext, lake: LakeResource):
        store = lake.store()
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests = []
        for date, items in sorted(late_batches_by_date(store).items()):
            digest = late_batch_digest(items)
            if cursor.get(date) == digest:
                continue
            cursor[date] = digest
            if set(items) <= merged_by_last_run(store, date):
                continue  # the partition's last run already merged exactly these batches
            if not partitions_def.has_partition_key(date):
                context.log.warning(f"late data for {date}, which is not a partition of this code location")
                continue
            requests.append(
                RunRequest(
                    run_key=f"late-data:{date}:{digest[:16]}",
                    partition_key=date,
                    tags={"geospatial_pipeline/trigger": "late-data", "geospatial_pipeline/late_batches": str(len(items))},
                )
            )
        new_cursor = json.dumps(cursor, sort_keys=True, separators=(",", ":"))
        if not requests:
            return SensorResult(skip_reason=SkipReason("no partition received new late data"), cursor=new_cursor)
        return SensorResult(run_requests=requests, cursor=new_cursor)

    return late_data_backfill_sensor
