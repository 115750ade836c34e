"""The late objects: per late field a GeoJSON Feature and a text note under late_data/{intended}/, written
from the spool by a lane of their own beside the GeoParquet build, and shown only once all are written.
Where several partitions detected the same field late, the latest arrival owns its objects."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.late_batches import late_rows_of
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.spool import Spool
from geospatial_pipeline.lake.store import ObjectStore, StagedWriter
from geospatial_pipeline.lake.writers import LATE_OBJECT_COLUMNS, write_late_objects


class LateLane:
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


def _late_object_rows(
    store: ObjectStore, late: Spool, keep: np.ndarray, dates: dict[dt.date, int], partition: dt.date
) -> Iterator[pa.Table]:
    """The late winners whose per-field objects this run writes, a spool row group at a time."""
    for intended in sorted(dates):
        rival = _stored_rivals(store, intended, partition)
        for rows in late_rows_of(late, keep, intended, LATE_OBJECT_COLUMNS):
            yield _late_object_winners(rows, partition, rival)


def _write_late_rows(take: Callable[[], pa.Table | None], writer: StagedWriter, concurrency: int) -> int:
    """Per-field GeoJSON + text objects of the row groups `take` hands out, until it has none left."""
    written = 0
    while (rows := take()) is not None:
        written += len(write_late_objects(writer, rows, concurrency))
    return written


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
