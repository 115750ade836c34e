"""Late batches: one GeoParquet file per intended date and detecting partition
(late_data/_batches/{intended}/detected_in={partition}.parquet), built from the spool, published after
every late object; and the stored batches a partition merges into what it publishes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geospatial_pipeline.core.schema import FIELD_SCHEMA
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.geoparquet import StagedGeoParquet
from geospatial_pipeline.lake.spool import ROW_SCHEMA, Spool, in_sorted
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore

# The stored late rows a partition merges are numbered after every input record (see merge_seqs).
MERGED_SEQ_BASE = 1 << 40


def late_rows_of(
    late: Spool, keep: np.ndarray, intended: dt.date, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The winning late rows for one intended date, a spool row group at a time (empty ones skipped); only
    `columns` (and seq) when given."""
    day = pa.scalar(intended, pa.date32())
    for table in late.batches(keep, columns):
        rows = table.filter(pc.equal(table["processing_date"], day))
        if rows.num_rows:
            yield rows


def build_late_batches(
    late: Spool, keep: np.ndarray, dates: dict[dt.date, int], crs: str, work: Path
) -> dict[dt.date, StagedGeoParquet]:
    """One GeoParquet batch per intended date (rows in input order), built in the scratch folder while the
    late objects are still being written: a batch may only be published after every one of them."""
    staged: dict[dt.date, StagedGeoParquet] = {}
    for intended in sorted(dates):
        batch = staged[intended] = StagedGeoParquet(crs, work)
        for rows in late_rows_of(late, keep, intended):
            batch.file.write(rows)
        batch.finish()  # complete on disk: publishing it is a rename
    return staged


def publish_late_batches(
    store: ObjectStore, staged: dict[dt.date, StagedGeoParquet], partition: dt.date
) -> list[tuple[dt.date, ObjectInfo, int]]:
    """Each staged batch under its key, in date order: (intended date, the object, its rows)."""
    published = []
    for intended in sorted(staged):
        info, _, written = staged[intended].publish(store, keys.late_batch_key(intended, partition))
        published.append((intended, info, written))
    return published


def own_late_rows(late: Spool, keep: np.ndarray, partition: dt.date) -> pa.Table:
    """The rows of this run's late batch for its own partition, exactly as that batch file will hold them."""
    tables = [t.select(FIELD_SCHEMA.names).cast(FIELD_SCHEMA) for t in late_rows_of(late, keep, partition)]
    return pa.concat_tables(tables) if tables else FIELD_SCHEMA.empty_table()


def stored_late_rows(
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


def with_own_batch(
    listing: list[dict[str, Any]], written: list[dict[str, Any]], partition: dt.date
) -> list[dict[str, Any]]:
    """The merged-batch listing with the etag of the batch this run wrote for its own partition."""
    own = {b["key"]: b["etag"] for b in written if b["key"] == keys.late_batch_key(partition, partition)}
    return [{**entry, "etag": own[entry["key"]]} if entry["etag"] is None else entry for entry in listing]


def merge_seqs(merged: pa.Table) -> np.ndarray:
    """Per stored late row, its sequence number: after every input record, in (detected_in, field_id)
    order, so ties between copies resolve the same way whatever order the batches were listed in."""
    order = pc.sort_indices(
        merged.select(["detected_in", "field_id"]), [("detected_in", "ascending"), ("field_id", "ascending")]
    )
    seq = np.empty(merged.num_rows, dtype=np.int64)
    seq[order.to_numpy()] = np.arange(MERGED_SEQ_BASE, MERGED_SEQ_BASE + merged.num_rows, dtype=np.int64)
    return seq


def with_seq(table: pa.Table, seq: np.ndarray) -> pa.Table:
    return table.append_column("seq", pa.array(seq, pa.int64()))


MERGE_SPOOL_ROWS = 16_384


def spool_merged(spool: Spool, merged: pa.Table, seq: np.ndarray, keep: np.ndarray) -> None:
    """The rows of `merged` whose seq is in `keep` (sorted), in seq order, appended a slice at a time."""
    rows = np.argsort(seq)
    rows = rows[in_sorted(seq[rows], keep)]
    for start in range(0, len(rows), MERGE_SPOOL_ROWS):
        take = rows[start : start + MERGE_SPOOL_ROWS]
        spool.append(with_seq(merged.take(pa.array(take)), seq[take]))
    spool.close()


def late_merge_summary(
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
