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
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geospatial_pipeline.core.dedupe import winners
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.core.schema import FIELD_SCHEMA
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.intake import (
    ROW_SCHEMA,
    Spool,
    classify_inputs,
    in_sorted,
    release_freed_memory,
)
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore, StagedWriter
from geospatial_pipeline.lake.writers import (
    LATE_OBJECT_COLUMNS,
    StagedGeoParquet,
    write_grouped_geoparquet,
    write_late_objects,
    write_manifest,
)

log = logging.getLogger(__name__)

KEY_COLUMNS = ["processing_date", "field_id", "arrival_time", "seq"]
OUTCOMES = ("on_time", "late", "rejected", "superseded")
MERGED_SEQ_BASE = 1 << 40


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
        own_late = _own_late_rows(late, keep, partition) if partition in late_dates else None
        late_lane = _LateLane(store, late, keep, late_dates, partition, limits)
        try:
            rejected_info = store.put_file(
                keys.rejected_key(partition), rejected_path, "application/geo+json-seq", consume=True
            )
            merged, merged_listing = _stored_late_rows(store, partition, own_late)
            del own_late
            merged_seq = _merge_seqs(merged)
            final = _merge_winners(own_keys, _with_seq(merged.select(KEY_COLUMNS[:-1]), merged_seq))
            del own_keys
            keep_on_time = own_on_time[in_sorted(own_on_time, final)]
            # The late rows that win go to disk in merge order: the GeoParquet build streams them back.
            merged_kept = Spool(work, "merged_late", ROW_SCHEMA)
            _spool_merged(merged_kept, merged, merged_seq, final)
            del merged, merged_seq
            release_freed_memory()
            fields_info, geo, rows = write_grouped_geoparquet(
                store,
                keys.fields_key(partition),
                lambda columns: _published_tables(on_time, keep_on_time, merged_kept, columns),
                target_crs,
                work,
            )
            staged_batches = _build_late_batches(late, keep, late_dates, target_crs, work)
        except BaseException:
            late_lane.join(raise_error=False)  # this error, not the lane's (often the same root cause)
            raise
        late_objects = late_lane.join(share=True)  # every late object written: now the batches may follow
        late_outputs = {
            "late_batches": _publish_late_batches(store, staged_batches, partition, report),
            **late_objects,
        }
        release_freed_memory()
        report.merged_late_batches = _with_own_batch(merged_listing, late_outputs["late_batches"], partition)
        counts["published_rows"] = rows
        counts["merged_late"] = merged_kept.rows
        counts["late_replaced_on_time"] = int(len(own_on_time) - len(keep_on_time))
        detected = [d for t in merged_kept.batches(columns=["detected_in"]) for d in t["detected_in"].to_pylist()]
        report.late_merge = _late_merge_summary(store, partition, report.merged_late_batches, detected)
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


def _late_object_rows(
    store: ObjectStore, late: Spool, keep: np.ndarray, dates: dict[dt.date, int], partition: dt.date
) -> Iterator[pa.Table]:
    """The late winners whose per-field objects this run writes, a spool row group at a time."""
    for intended in sorted(dates):
        rival = _stored_rivals(store, intended, partition)
        for rows in _late_rows_of(late, keep, intended, LATE_OBJECT_COLUMNS):
            yield _late_object_winners(rows, partition, rival)


def _write_late_rows(take: Callable[[], pa.Table | None], writer: StagedWriter, concurrency: int) -> int:
    """Per-field GeoJSON + text objects of the row groups `take` hands out, until it has none left."""
    written = 0
    while (rows := take()) is not None:
        written += len(write_late_objects(writer, rows, concurrency))
    return written


def _build_late_batches(
    late: Spool, keep: np.ndarray, dates: dict[dt.date, int], crs: str, work: Path
) -> dict[dt.date, StagedGeoParquet]:
    """One GeoParquet batch per intended date (rows in input order), built in the scratch folder while the
    late objects are still being written: a batch may only be published after every one of them. A batch
    that does not hold its date's late count fails the run here, before anything of it is published."""
    staged: dict[dt.date, StagedGeoParquet] = {}
    for intended in sorted(dates):
        batch = staged[intended] = StagedGeoParquet(crs, work)
        for rows in _late_rows_of(late, keep, intended):
            batch.file.write(rows)
        batch.finish()  # complete on disk: publishing it is a rename
        if batch.file.rows != dates[intended]:
            raise ConservationError(f"late batch {intended}: wrote {batch.file.rows} rows, expected {dates[intended]}")
    return staged


def _publish_late_batches(
    store: ObjectStore, staged: dict[dt.date, StagedGeoParquet], partition: dt.date, report: PartitionReport
) -> list[dict[str, Any]]:
    batch_keys = []
    for intended in sorted(staged):
        info, _, written = staged[intended].publish(store, keys.late_batch_key(intended, partition))
        batch_keys.append(_describe(store, info))
        report.late_by_date[intended.isoformat()] = written
    return batch_keys


class _LateLane:
    """The late objects, written from the spool a row group at a time by a thread of its own, started at
    once beside the quarantine, GeoParquet and late-batch builds on the caller's thread.

    The two take about as long, so the caller joins in once its own work is done (join(share=True)) and
    the row groups left are shared. Only where put_many writes one object at a time (the local folder):
    a second writer there is a second core, while a pooled backend's call already spreads over its
    connections and a second one would only exceed them."""

    def __init__(
        self,
        store: ObjectStore,
        late: Spool,
        keep: np.ndarray,
        dates: dict[dt.date, int],
        partition: dt.date,
        limits: Limits,
    ):
        self._store, self._concurrency = store, limits.late_write_concurrency
        self._writer = store.staged_writer()  # published by join(), before the late batches
        self._rows = _late_object_rows(store, late, keep, dates, partition)
        self._lock = threading.Lock()
        self._stopped = False
        self._written = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="late-objects", daemon=True)
        self._thread.start()

    def _take(self) -> pa.Table | None:
        """The next row group to write, or None when there is none left or a writer has failed."""
        with self._lock:  # a generator serves one thread at a time
            if not self._stopped:
                rows = next(self._rows, None)
                if rows is not None:
                    return rows
            self._stopped = True
            return None

    def _write(self) -> None:
        try:
            written = _write_late_rows(self._take, self._writer, self._concurrency)
        except BaseException:
            self._stopped = True  # the other writer stops after its row group
            raise
        with self._lock:
            self._written += written

    def _run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # raised on the caller's thread by join()
            self._error = exc

    def join(self, raise_error: bool = True, share: bool = False) -> dict[str, Any]:
        """Once every late object is written and shown: their count, or the lane's error. With `share` the
        caller's thread writes row groups too (where that helps) until none is left. Called with
        `raise_error` off, the run has failed elsewhere: the lane stops after its row group and objects not
        shown yet are dropped."""
        if not raise_error:
            self._stopped = True
        try:
            if share and not self._store.pooled_put_many:
                self._write()
        except BaseException:
            self._thread.join()
            self._writer.discard()
            raise
        self._thread.join()
        if self._error is None and raise_error:
            self._writer.publish()
        else:
            self._writer.discard()
        if self._error is not None and raise_error:
            raise self._error
        return {"late_objects": self._written}


def _late_rows_of(
    late: Spool, keep: np.ndarray, intended: dt.date, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The winning late rows for one intended date, a spool row group at a time (empty ones skipped); only
    `columns` (and seq) when given."""
    day = pa.scalar(intended, pa.date32())
    for table in late.batches(keep, columns):
        rows = table.filter(pc.equal(table["processing_date"], day))
        if rows.num_rows:
            yield rows


def _own_late_rows(late: Spool, keep: np.ndarray, partition: dt.date) -> pa.Table:
    """The rows of this run's late batch for its own partition, exactly as that batch file will hold them."""
    tables = [t.select(FIELD_SCHEMA.names).cast(FIELD_SCHEMA) for t in _late_rows_of(late, keep, partition)]
    return pa.concat_tables(tables) if tables else FIELD_SCHEMA.empty_table()


def _with_own_batch(
    listing: list[dict[str, Any]], written: list[dict[str, Any]], partition: dt.date
) -> list[dict[str, Any]]:
    """The merged-batch listing with the etag of the batch this run wrote for its own partition."""
    own = {b["key"]: b["etag"] for b in written if b["key"] == keys.late_batch_key(partition, partition)}
    return [{**entry, "etag": own[entry["key"]]} if entry["etag"] is None else entry for entry in listing]


def _late_object_winners(rows: pa.Table, partition: dt.date, best: dict[str, tuple[Any, ...]]) -> pa.Table:
    """The rows whose per-field objects this run may write: those no other run's stored copy (`best`, from
    _stored_rivals) beats.

    late_data/{D}/{field_id}.* has one copy per field while several partitions may detect the same field
    late; the latest arrival (then the later detecting partition, as in the merge) owns the object, so
    re-running any partition, in any order, leaves the same objects.
    """
    if not best:
        return rows
    ours = zip(rows["field_id"].to_pylist(), rows["arrival_time"].to_pylist(), strict=True)
    mine = [fid not in best or (arrival, partition) > best[fid] for fid, arrival in ours]
    return rows.filter(pa.array(mine, pa.bool_()))


def _stored_rivals(store: ObjectStore, intended: dt.date, partition: dt.date) -> dict[str, tuple[Any, ...]]:
    """Per field id, the best (arrival, detected-in) among other runs' stored late batches for `intended`."""
    best: dict[str, tuple[Any, ...]] = {}
    rank_columns = ["field_id", "arrival_time", "detected_in"]
    for info in store.list(keys.late_batches_prefix(intended)):
        parsed = keys.parse_late_batch_key(info.key)
        if parsed is None or parsed[1] == partition.isoformat():
            continue
        with store.open(info.key) as f:
            other = pq.read_table(pa.BufferReader(f.read()), columns=rank_columns)
        columns = (other[c].to_pylist() for c in rank_columns)
        for fid, arrival, detected in zip(*columns, strict=True):
            best[fid] = max(best.get(fid, (arrival, detected)), (arrival, detected))
    return best


def _stored_late_rows(
    store: ObjectStore, partition: dt.date, own: pa.Table | None = None
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Every late batch stored for this partition; with `own`, this run's batch for it is those rows
    instead of what the store holds (the late lane may not have replaced it yet). Its listing entry then
    has no etag until _with_own_batch fills it in."""
    tables, listing = [], []
    own_key = keys.late_batch_key(partition, partition)
    for info in store.list(keys.late_batches_prefix(partition)):
        if keys.parse_late_batch_key(info.key) is None or (own is not None and info.key == own_key):
            continue
        with store.open(info.key) as f:
            tables.append(pq.read_table(pa.BufferReader(f.read())).select(ROW_SCHEMA.names[:-1]))
        listing.append({"key": info.key, "etag": info.etag, "rows": tables[-1].num_rows})
    if own is not None:
        tables.append(own)
        listing.append({"key": own_key, "etag": None, "rows": own.num_rows})
        listing.sort(key=lambda entry: entry["key"])
    if not tables:
        return FIELD_SCHEMA.empty_table(), listing
    return pa.concat_tables(tables), listing


def _merge_winners(own: pa.Table, merged: pa.Table) -> np.ndarray:
    """winners() of own on-time winners and stored late rows together, sorted. Own rows are unique per
    (date, field id) already, so only those sharing a field id with a stored row can lose: the rest are
    kept without sorting the partition's millions of keys again."""
    contested = pc.is_in(own["field_id"], value_set=merged["field_id"].combine_chunks()).to_numpy(zero_copy_only=False)
    uncontested = own["seq"].to_numpy()[~contested] if own.num_rows else np.zeros(0, dtype=np.int64)
    decided = winners(_concat([own.filter(pa.array(contested)), merged]))
    return np.sort(np.concatenate([uncontested, decided]))


def _merge_seqs(merged: pa.Table) -> np.ndarray:
    """Per stored late row, its sequence number: after every input record, in (detected_in, field_id)
    order, so ties between copies resolve the same way whatever order the batches were listed in."""
    order = pc.sort_indices(
        merged.select(["detected_in", "field_id"]), [("detected_in", "ascending"), ("field_id", "ascending")]
    )
    seq = np.empty(merged.num_rows, dtype=np.int64)
    seq[order.to_numpy()] = np.arange(MERGED_SEQ_BASE, MERGED_SEQ_BASE + merged.num_rows, dtype=np.int64)
    return seq


def _with_seq(table: pa.Table, seq: np.ndarray) -> pa.Table:
    return table.append_column("seq", pa.array(seq, pa.int64()))


MERGE_SPOOL_ROWS = 16_384


def _spool_merged(spool: Spool, merged: pa.Table, seq: np.ndarray, keep: np.ndarray) -> None:
    """The rows of `merged` whose seq is in `keep` (sorted), in seq order, appended a slice at a time."""
    rows = np.argsort(seq)
    rows = rows[in_sorted(seq[rows], keep)]
    for start in range(0, len(rows), MERGE_SPOOL_ROWS):
        take = rows[start : start + MERGE_SPOOL_ROWS]
        spool.append(_with_seq(merged.take(pa.array(take)), seq[take]))
    spool.close()


def _late_merge_summary(
    store: ObjectStore, partition: dt.date, batches: list[dict[str, Any]], detected: list[Any]
) -> dict[str, Any]:
    """Which late batches this run merged for the first time, from the previous manifest of the partition.

    Marks each entry of `batches` with `merged_before`; counts the published late rows by the same split.
    """
    previous: set[tuple[str, str]] = set()
    previous_run = None
    if store.head(keys.manifest_key(partition)) is not None:
        old = orjson.loads(store.get_bytes(keys.manifest_key(partition)))
        previous = {(b["key"], b["etag"]) for b in old.get("merged_late_batches", [])}
        previous_run = old.get("run_id")
    new_keys = set()
    for batch in batches:
        batch["merged_before"] = (batch["key"], batch["etag"]) in previous
        if not batch["merged_before"]:
            new_keys.add(batch["key"])
    rows_new = sum(1 for d in detected if keys.late_batch_key(partition, d) in new_keys)
    return {
        "previous_run_id": previous_run,
        "new_batches": sorted(new_keys),
        "rows_new": rows_new,
        "rows_merged_before": len(detected) - rows_new,
    }


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
