"""One partition run: stream the landing batch through the rules and publish every outcome.

Order of effects, so a reader never sees a half-published partition: nothing is written until the whole
batch is classified and the counts balance. Then two lanes run side by side, because the per-field late
objects are file-system or request bound while the GeoParquet build is CPU bound: one writes, per intended
date, the late objects and then that date's batch; the other the quarantine and the partition's GeoParquet.
The manifest is written last, after both. Each object is written atomically; a re-run overwrites the same
keys with the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.dedupe import winners
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.geoparquet import write_grouped_geoparquet
from geospatial_pipeline.lake.intake import classify_inputs
from geospatial_pipeline.lake.late_batches import (
    build_late_batches,
    late_merge_summary,
    merge_seqs,
    own_late_rows,
    publish_late_batches,
    spool_merged,
    stored_late_rows,
    with_own_batch,
    with_seq,
)
from geospatial_pipeline.lake.late_objects import LateLane
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.spool import ROW_SCHEMA, Spool, in_sorted
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore
from geospatial_pipeline.lake.workers import release_freed_memory
from geospatial_pipeline.lake.writers import write_manifest

log = logging.getLogger(__name__)

KEY_COLUMNS = ["processing_date", "field_id", "arrival_time", "seq"]
OUTCOMES = ("on_time", "late", "rejected", "superseded")


class ConservationError(RuntimeError):
    """Records went missing or were counted twice: nothing is published."""


@dataclass
class PartitionReport:
    """What a run did, for the manifest, the asset metadata and the checks."""

    partition: dt.date
    inputs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    late_by_date: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    merged_late_batches: list[dict[str, Any]] = field(default_factory=list)
    late_merge: dict[str, Any] = field(default_factory=dict)
    geo: dict[str, Any] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _strictly_increasing(values: np.ndarray) -> bool:
    """Sorted with no value twice (a unique check without np.unique's copy and sort)."""
    return bool((values[1:] > values[:-1]).all())


def run_partition(
    store: ObjectStore,
    partition: dt.date,
    rules: Rules,
    *,
    target_crs: str,
    limits: Limits | None = None,
    run_id: str = "",
    code_version: str = "",
    config_digest: str = "",
    now: dt.datetime | None = None,
) -> PartitionReport:
    now = now or dt.datetime.now(dt.UTC)
    limits = limits or Limits()
    report = PartitionReport(partition)
    with tempfile.TemporaryDirectory(prefix=f"partition-{partition}-") as tmp:
        work = Path(tmp)
        intake = classify_inputs(store, partition, rules, limits, now, work)
        on_time, late, records, rejected_path = intake.on_time, intake.late, intake.records, intake.rejected_path
        report.inputs = intake.inputs
        reasons = intake.reasons

        # Per (intended date, field id) the latest arrival wins, across on-time and late copies. The keys
        # come back from the spools (a few columns): nothing grows with the batch while it is classified.
        on_time_keys, late_keys = (_concat(list(spool.batches(columns=KEY_COLUMNS))) for spool in (on_time, late))
        keep = winners(_concat([on_time_keys, late_keys]))
        on_time_seqs, late_seqs = _sorted_seqs(on_time_keys), _sorted_seqs(late_keys)
        own_on_time = keep[in_sorted(keep, on_time_seqs)]
        # The late winners, by intended date, from their keys; their rows stay in the spool until written.
        late_won = late_keys.filter(pa.array(in_sorted(late_keys["seq"].to_numpy(), keep)))
        by_date = pc.value_counts(late_won["processing_date"]).to_pylist() if late_won.num_rows else []
        late_dates = {d["values"]: d["counts"] for d in by_date}
        counts = {
            "input_records": records,
            "on_time": len(own_on_time),
            "late": late_won.num_rows,
            "rejected": records - on_time.rows - late.rows,
            "superseded": on_time.rows + late.rows - len(keep),
        }
        accepted_seqs = np.sort(np.concatenate([on_time_seqs, late_seqs]))
        if (
            sum(counts[k] for k in OUTCOMES) != records
            or min(counts.values()) < 0
            # every accepted record once, and the winners are accepted records of this batch, each once
            or len(accepted_seqs) != on_time.rows + late.rows
            or not _strictly_increasing(accepted_seqs)
            or not _strictly_increasing(keep)
            or not in_sorted(keep, accepted_seqs).all()
        ):
            raise ConservationError(f"partition {partition}: outcome counts do not add up: {counts}")
        report.reasons = dict(sorted(reasons.items()))
        # Only the on-time winners' keys are needed from here on: let the rest go before the big writes.
        own_keys = on_time_keys.filter(pa.array(in_sorted(on_time_keys["seq"].to_numpy(), own_on_time)))
        del on_time_keys, late_keys, late_won, on_time_seqs, late_seqs, accepted_seqs
        release_freed_memory()

        # --- publish: late objects beside (quarantine, GeoParquet, late batches built); then the late
        # batches, once every late object is written; the manifest last ---
        # The partition = its own on-time fields + every late field stored for it, latest arrival winning;
        # its own batch is not published yet, so those rows come from the spool.
        own_late = own_late_rows(late, keep, partition) if partition in late_dates else None
        late_lane = LateLane(store, late, keep, late_dates, partition, limits)
        try:
            rejected_info = store.put_file(
                keys.rejected_key(partition), rejected_path, "application/geo+json-seq", consume=True
            )
            merged, merged_listing = stored_late_rows(store, partition, own_late)
            del own_late
            merged_seq = merge_seqs(merged)
            final = _merge_winners(own_keys, with_seq(merged.select(KEY_COLUMNS[:-1]), merged_seq))
            del own_keys
            keep_on_time = own_on_time[in_sorted(own_on_time, final)]
            # The late rows that win go to disk in merge order: the GeoParquet build streams them back.
            merged_kept = Spool(work, "merged_late", ROW_SCHEMA)
            spool_merged(merged_kept, merged, merged_seq, final)
            del merged, merged_seq
            release_freed_memory()
            fields_info, geo, rows = write_grouped_geoparquet(
                store,
                keys.fields_key(partition),
                lambda columns: _published_tables(on_time, keep_on_time, merged_kept, columns),
                target_crs,
                work,
            )
            staged_batches = build_late_batches(late, keep, late_dates, target_crs, work)
            for intended, batch in staged_batches.items():  # a short batch fails the run before it is published
                if batch.file.rows != late_dates[intended]:
                    raise ConservationError(
                        f"late batch {intended}: wrote {batch.file.rows} rows, expected {late_dates[intended]}"
                    )
        except BaseException:
            late_lane.join(raise_error=False)  # this error, not the lane's (often the same root cause)
            raise
        late_objects = late_lane.join(share=True)  # every late object written: now the batches may follow
        published_batches = publish_late_batches(store, staged_batches, partition)
        report.late_by_date = {intended.isoformat(): rows for intended, _, rows in published_batches}
        late_outputs = {"late_batches": [_describe(store, info) for _, info, _ in published_batches], **late_objects}
        release_freed_memory()
        report.merged_late_batches = with_own_batch(merged_listing, late_outputs["late_batches"], partition)
        counts["published_rows"] = rows
        counts["merged_late"] = merged_kept.rows
        counts["late_replaced_on_time"] = int(len(own_on_time) - len(keep_on_time))
        detected = [d for t in merged_kept.batches(columns=["detected_in"]) for d in t["detected_in"].to_pylist()]
        report.late_merge = late_merge_summary(store, partition, report.merged_late_batches, detected)
        report.counts = counts
        report.geo = geo
        report.preview = _preview(on_time, keep_on_time, merged_kept)
        report.outputs = {
            "fields": _describe(store, fields_info),
            "rejected": _describe(store, rejected_info),
            **late_outputs,
        }
        report.manifest = {
            "partition": partition.isoformat(),
            "run_id": run_id,
            "code_version": code_version,
            "config_digest": config_digest,
            "inputs": report.inputs,
            "counts": counts,
            "reasons": report.reasons,
            "late_by_intended_date": report.late_by_date,
            "merged_late_batches": report.merged_late_batches,
            "late_merge": report.late_merge,
            "outputs": report.outputs,
            "bbox": geo["columns"]["geometry"].get("bbox"),
            "completed_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        write_manifest(store, partition, report.manifest)
    return report


def _concat(tables: list[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return (schema or ROW_SCHEMA.empty_table().select(KEY_COLUMNS).schema).empty_table()
    return pa.concat_tables(tables)


def _merge_winners(own: pa.Table, merged: pa.Table) -> np.ndarray:
    """winners() of own on-time winners and stored late rows together, sorted. Own rows are unique per
    (date, field id) already, so only those sharing a field id with a stored row can lose: the rest are
    kept without sorting the partition's millions of keys again."""
    contested = pc.is_in(own["field_id"], value_set=merged["field_id"].combine_chunks()).to_numpy(zero_copy_only=False)
    uncontested = own["seq"].to_numpy()[~contested] if own.num_rows else np.zeros(0, dtype=np.int64)
    decided = winners(_concat([own.filter(pa.array(contested)), merged]))
    return np.sort(np.concatenate([uncontested, decided]))


def _sorted_seqs(table: pa.Table) -> np.ndarray:
    return np.sort(table["seq"].to_numpy())


def _published_tables(
    on_time: Spool, keep: np.ndarray, merged: Spool, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    yield from on_time.batches(keep, columns)
    for late in merged.batches(columns=columns):
        if "arrived_late" in late.column_names:
            flag = pa.array(np.ones(late.num_rows, dtype=bool))
            late = late.set_column(late.schema.get_field_index("arrived_late"), "arrived_late", flag)
        yield late


def _preview(on_time: Spool, keep: np.ndarray, merged: Spool, limit: int = 10) -> list[dict[str, Any]]:
    cols = ["field_id", "processing_date", "arrival_time", "arrived_late", "area_ha", "source_crs"]
    rows: list[dict[str, Any]] = []
    for table in _published_tables(on_time, keep, merged):
        rows.extend(table.select(cols).slice(0, limit - len(rows)).to_pylist())
        if len(rows) >= limit:
            break
    return rows


def _describe(store: ObjectStore, info: ObjectInfo) -> dict[str, Any]:
    return {"key": info.key, "uri": store.uri(info.key), "size": info.size, "etag": info.etag}
