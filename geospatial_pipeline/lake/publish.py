"""One partition run: stream the landing batch through the rules and publish every outcome.

Order of effects, so a reader never sees a half-published partition: nothing is written until the whole
batch is classified and the counts balance; then late objects and batches, quarantine, the partition's
GeoParquet, and the manifest last. Each object is written atomically; a re-run overwrites the same keys
with the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geospatial_pipeline.core.partition import FIELD_SCHEMA, LATE_SCHEMA, ChunkOutcome, Rules, classify_chunk, reject_line, winners
from geospatial_pipeline.core.reading import is_raw_batch_file, iter_chunks, parse_chunk
from geospatial_pipeline.core.records import Reason
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore
from geospatial_pipeline.lake.writers import write_geoparquet, write_late_objects, write_manifest

log = logging.getLogger(__name__)

KEY_COLUMNS = ["processing_date", "field_id", "arrival_time", "seq"]
OUTCOMES = ("on_time", "late", "rejected", "superseded")
ROW_SCHEMA = FIELD_SCHEMA.append(pa.field("seq", pa.int64()))
LATE_ROW_SCHEMA = ROW_SCHEMA.append(LATE_SCHEMA.field("geometry_geojson"))
MERGED_SEQ_BASE = 1 << 40


class ConservationError(RuntimeError):
    """Records went missing or were counted twice: nothing is published."""


@dataclass(frozen=True)
class Limits:
    chunk_records: int = 50_000
    max_record_bytes: int = 1_000_000
    max_collection_bytes: int = 64 << 20
    late_write_concurrency: int = 16


@dataclass
class PartitionReport:
    """What a run did, for the manifest, the asset metadata and the checks."""

    partition: dt.date
    inputs: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    late_by_date: dict[str, int] = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    merged_late_batches: list[dict] = field(default_factory=list)
    late_merge: dict = field(default_factory=dict)
    geo: dict = field(default_factory=dict)
    preview: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


class _Spool:
    """Arrow tables parked on local disk between the classify pass and the publish pass."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="none")
        self.writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def batches(self, seqs: np.ndarray | None = None) -> Iterator[pa.Table]:
        """Row groups back in order, optionally only the rows whose seq is in `seqs` (sorted)."""
        if self.rows == 0:
            return
        pf = pq.ParquetFile(self.path)
        for i in range(pf.num_row_groups):
            table = pf.read_row_group(i)
            if seqs is not None:
                table = table.filter(pa.array(np.isin(table["seq"].to_numpy(), seqs, assume_unique=True)))
            yield table


def run_partition(
    store: ObjectStore,
    partition: dt.date,
    rules: Rules,
    *,
    target_crs: str,
    limits: Limits = Limits(),
    run_id: str = "",
    code_version: str = "",
    config_digest: str = "",
    now: dt.datetime | None = None,
) -> PartitionReport:
    now = now or dt.datetime.now(dt.UTC)
    report = PartitionReport(partition)
    with tempfile.TemporaryDirectory(prefix=f"partition-{partition}-") as tmp:
        work = Path(tmp)
        on_time = _Spool(work / "on_time.parquet", ROW_SCHEMA)
        late = _Spool(work / "late.parquet", LATE_ROW_SCHEMA)
        rejected_path = work / "rejected.geojsonl"
        reasons: Counter = Counter()
        on_time_keys: list[pa.Table] = []
        late_keys: list[pa.Table] = []
        records = 0
        with rejected_path.open("wb") as rejected_out:
            for info in store.list(keys.raw_prefix(partition)):
                report.inputs.append({"key": info.key, "size": info.size, "etag": info.etag})
                for outcome in _classify_file(store, info, partition, rules, limits, now, records):
                    records += outcome.records
                    on_time.append(outcome.on_time)
                    late.append(outcome.late)
                    on_time_keys.append(outcome.on_time.select(KEY_COLUMNS))
                    late_keys.append(outcome.late.select(KEY_COLUMNS))
                    rejected_out.writelines(line + b"\n" for line in outcome.rejected)
                    reasons.update(outcome.reason_counts)
        on_time.close()
        late.close()

        # Per (intended date, field id) the latest arrival wins, across on-time and late copies.
        keep = winners(_concat(on_time_keys + late_keys))
        own_on_time = np.intersect1d(keep, _seqs(on_time_keys), assume_unique=True)
        late_table = _concat(list(late.batches(keep)), late.schema)
        counts = {
            "input_records": records,
            "on_time": len(own_on_time),
            "late": late_table.num_rows,
            "rejected": records - on_time.rows - late.rows,
            "superseded": on_time.rows + late.rows - len(keep),
        }
        accepted_seqs = np.concatenate([_seqs(on_time_keys), _seqs(late_keys)])
        if (
            sum(counts[k] for k in OUTCOMES) != records
            or min(counts.values()) < 0
            # every accepted record once, and the winners are accepted records of this batch, each once
            or len(np.unique(accepted_seqs)) != on_time.rows + late.rows
            or len(np.unique(keep)) != len(keep)
            or not np.isin(keep, accepted_seqs).all()
        ):
            raise ConservationError(f"partition {partition}: outcome counts do not add up: {counts}")
        report.reasons = dict(sorted(reasons.items()))

        # --- publish: late objects and batches, quarantine, GeoParquet, manifest (last) ---
        late_outputs = _publish_late(store, late_table, partition, target_crs, limits, work, report)
        rejected_info = store.put_file(keys.rejected_key(partition), rejected_path, "application/geo+json-seq")

        # The partition = its own on-time fields + every late field stored for it, latest arrival winning.
        merged, report.merged_late_batches = _stored_late_rows(store, partition)
        final = winners(
            _concat([t.select(KEY_COLUMNS) for t in on_time.batches(own_on_time)] + [merged.select(KEY_COLUMNS)])
        )
        keep_on_time = np.intersect1d(own_on_time, final, assume_unique=True)
        merged_kept = merged.filter(pa.array(np.isin(merged["seq"].to_numpy(), final)))
        fields_info, geo, rows = write_geoparquet(
            store,
            keys.fields_key(partition),
            _published_tables(on_time, keep_on_time, merged_kept),
            target_crs,
            work,
        )
        counts["published_rows"] = rows
        counts["merged_late"] = merged_kept.num_rows
        counts["late_replaced_on_time"] = int(len(own_on_time) - len(keep_on_time))
        report.late_merge = _late_merge_summary(store, partition, report.merged_late_batches, merged_kept)
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


def _classify_file(
    store: ObjectStore, info: ObjectInfo, partition: dt.date, rules: Rules, limits: Limits, now: dt.datetime, seq0: int
) -> Iterator[ChunkOutcome]:
    seq = seq0
    if not is_raw_batch_file(info.key) or not _readable_key(info.key):
        line = reject_line(info.key, 0, b"", [(Reason.UNSUPPORTED_FILE, "not a .geojson, .geojsonl or .ndjson file (optionally .gz)")])
        yield ChunkOutcome(ROW_SCHEMA.empty_table(), LATE_ROW_SCHEMA.empty_table(), [line], Counter({Reason.UNSUPPORTED_FILE.value: 1}))
        return
    with store.open(info.key) as stream:
        for chunk in iter_chunks(
            info.key,
            stream,
            chunk_records=limits.chunk_records,
            max_record_bytes=limits.max_record_bytes,
            max_collection_bytes=limits.max_collection_bytes,
        ):
            outcome = classify_chunk(parse_chunk(chunk), partition, rules, now, first_seq=seq)
            seq += outcome.records
            yield outcome


def _concat(tables: list[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return (schema or ROW_SCHEMA.empty_table().select(KEY_COLUMNS).schema).empty_table()
    return pa.concat_tables(tables)


def _publish_late(
    store: ObjectStore, late: pa.Table, partition: dt.date, crs: str, limits: Limits, work: Path, report: PartitionReport
) -> dict:
    """Per-field GeoJSON + text objects, and one GeoParquet batch per intended date."""
    batch_keys = []
    object_count = 0
    for intended in sorted(set(late["processing_date"].to_pylist())):
        rows = late.filter(pc.equal(late["processing_date"], pa.scalar(intended, pa.date32())))
        rows = rows.take(pc.sort_indices(rows, [("field_id", "ascending")]))
        object_rows = _late_object_winners(store, rows, intended, partition)
        object_count += len(write_late_objects(store, object_rows, limits.late_write_concurrency))
        info, _, _ = write_geoparquet(store, keys.late_batch_key(intended, partition), [rows], crs, work)
        batch_keys.append(_describe(store, info))
        report.late_by_date[intended.isoformat()] = rows.num_rows
    return {"late_batches": batch_keys, "late_objects": object_count}


def _late_object_winners(
    store: ObjectStore, rows: pa.Table, intended: dt.date, partition: dt.date
) -> pa.Table:
    """The rows whose per-field objects this run may write: those no other run's stored copy beats.

    late_data/{D}/{field_id}.* has one copy per field while several partitions may detect the same field
    late; the latest arrival (then the later detecting partition, as in the merge) owns the object, so
    re-running any partition, in any order, leaves the same objects.
    """
    best: dict[str, tuple] = {}
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
    if not best:
        return rows
    ours = zip(rows["field_id"].to_pylist(), rows["arrival_time"].to_pylist(), strict=True)
    mine = [fid not in best or (arrival, partition) > best[fid] for fid, arrival in ours]
    return rows.filter(pa.array(mine, pa.bool_()))


def _stored_late_rows(store: ObjectStore, partition: dt.date) -> tuple[pa.Table, list[dict]]:
    """Every late batch stored for this partition (the one this run just wrote included)."""
    tables, listing = [], []
    for info in store.list(keys.late_batches_prefix(partition)):
        if keys.parse_late_batch_key(info.key) is None:
            continue
        with store.open(info.key) as f:
            tables.append(pq.read_table(pa.BufferReader(f.read())).select(ROW_SCHEMA.names[:-1]))
        listing.append({"key": info.key, "etag": info.etag, "rows": tables[-1].num_rows})
    if not tables:
        return ROW_SCHEMA.empty_table(), listing
    merged = pa.concat_tables(tables)
    merged = merged.take(pc.sort_indices(merged, [("detected_in", "ascending"), ("field_id", "ascending")]))
    # Sequence numbers after every input record, so ties between copies resolve deterministically.
    seq = np.arange(MERGED_SEQ_BASE, MERGED_SEQ_BASE + merged.num_rows, dtype=np.int64)
    return merged.append_column("seq", pa.array(seq)), listing


def _late_merge_summary(
    store: ObjectStore, partition: dt.date, batches: list[dict], merged: pa.Table
) -> dict:
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
    detected = merged["detected_in"].to_pylist() if merged.num_rows else []
    rows_new = sum(1 for d in detected if keys.late_batch_key(partition, d) in new_keys)
    return {
        "previous_run_id": previous_run,
        "new_batches": sorted(new_keys),
        "rows_new": rows_new,
        "rows_merged_before": len(detected) - rows_new,
    }


def _seqs(tables: list[pa.Table]) -> np.ndarray:
    return np.sort(np.concatenate([t["seq"].to_numpy() for t in tables])) if tables else np.zeros(0, np.int64)


def _published_tables(on_time: _Spool, keep: np.ndarray, merged: pa.Table) -> Iterator[pa.Table]:
    yield from on_time.batches(keep)
    if merged.num_rows:
        yield merged.set_column(merged.schema.get_field_index("arrived_late"), "arrived_late", pa.array(np.ones(merged.num_rows, dtype=bool)))


def _preview(on_time: _Spool, keep: np.ndarray, merged: pa.Table, limit: int = 10) -> list[dict]:
    cols = ["field_id", "processing_date", "arrival_time", "arrived_late", "area_ha", "source_crs"]
    rows: list[dict] = []
    for table in _published_tables(on_time, keep, merged):
        rows.extend(table.select(cols).slice(0, limit - len(rows)).to_pylist())
        if len(rows) >= limit:
            break
    return rows


def _describe(store: ObjectStore, info: ObjectInfo) -> dict:
    return {"key": info.key, "uri": store.uri(info.key), "size": info.size, "etag": info.etag}


def _readable_key(key: str) -> bool:
    """A landed object whose name no lake key can have (a control character, '//', '..') is quarantined
    as an unsupported file rather than stopping the run."""
    try:
        keys.key(*key.split("/"))
    except keys.UnsafeKeyError:
        return False
    return True
