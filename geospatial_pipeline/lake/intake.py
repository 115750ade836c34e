"""The classify pass of a partition run: every raw file of the landing batch, through the rules, into two
spools (on-time and late rows, in input order) and the quarantine lines, with nothing published yet.

A large line-delimited file is cut into blocks of whole lines that worker processes split, decode,
classify and spool themselves: this process only reads, cuts and hashes, so both cores decode JSON (Python
work under the GIL) and no row crosses a pipe. Everything else is classified here, a piece at a time.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import functools
import gc
import hashlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geospatial_pipeline.core.arrays import Bools, Int64s
from geospatial_pipeline.core.features import ParsedChunk, parse_chunk
from geospatial_pipeline.core.partition import classify_chunk, reject_line
from geospatial_pipeline.core.reading import (
    LINE_SUFFIXES,
    ByteStream,
    LineBlock,
    RawChunk,
    block_chunks,
    is_raw_batch_file,
    iter_chunks,
    line_blocks,
    open_decompressed,
)
from geospatial_pipeline.core.reasons import Reason
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.core.schema import FEW_VALUES, FIELD_SCHEMA, LATE_SCHEMA
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

ROW_SCHEMA = FIELD_SCHEMA.append(pa.field("seq", pa.int64()))
LATE_ROW_SCHEMA = ROW_SCHEMA.append(LATE_SCHEMA.field("geometry_geojson"))


def in_sorted(values: Int64s, sorted_set: Int64s) -> Bools:
    """np.isin for a set that is already sorted: a binary search per value. np.isin sorts the whole set on
    every call, and the spools call this once per row group with the partition's millions of winners."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at: Int64s = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: Bools = sorted_set[at] == values  # numpy's stubs type == as Any
    return found


def _spool_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    # Scratch read back by this run only: no statistics, dictionaries only where values repeat, no
    # compression (lz4 saved 17% of the bytes for three times the CPU: 1M rows, 764 MiB of tables,
    # written in 0.4-0.5 s instead of 1.3-1.5 s, read in 0.45 instead of 0.6-1.0 s; 704 vs 631 MiB).
    return pq.ParquetWriter(
        path,
        schema,
        compression="none",
        use_dictionary=[name for name in FEW_VALUES if name in schema.names],
        write_statistics=False,
    )


class Spool:
    """Arrow tables parked on local disk between the classify pass and the publish pass, in input order:
    one or more part files, written here (append) or by a worker process and taken over (adopt)."""

    def __init__(self, folder: Path, name: str, schema: pa.Schema):
        self.folder = folder
        self.name = name
        self.schema = schema
        self.parts: list[Path] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._named = 0

    def new_part_path(self) -> Path:
        """A name for the next part, whoever writes it (adopt() takes worker parts in order)."""
        self._named += 1
        return self.folder / f"{self.name}-{self._named:07d}.parquet"

    def append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self.parts.append(self.new_part_path())
            self._writer = _spool_writer(self.parts[-1], self.schema)
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def adopt(self, path: Path, rows: int) -> None:
        """A part written elsewhere (write_spool_part), next in order."""
        if rows == 0:
            return
        self.close()
        self.parts.append(path)
        self.rows += rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def batches(self, seqs: Int64s | None = None, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Row groups back in order, optionally only the rows whose seq is in `seqs` (sorted), and only
        `columns` (with seq) when given."""
        wanted = None if columns is None else list(dict.fromkeys([*columns, "seq"]))
        for part in self.parts:
            pf = pq.ParquetFile(part)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i, columns=wanted)
                if seqs is not None:
                    table = table.filter(pa.array(in_sorted(table["seq"].to_numpy(), seqs)))
                yield table


def write_spool_part(path: Path, schema: pa.Schema, tables: list[pa.Table]) -> int:
    """`tables` as one spool part file (none if they hold no rows); their rows."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return 0
    writer = _spool_writer(path, schema)
    try:
        for table in tables:
            writer.write_table(table.cast(schema))
    finally:
        writer.close()
    return sum(t.num_rows for t in tables)


@dataclass
class Intake:
    """What the classify pass leaves for publishing."""

    on_time: Spool
    late: Spool
    rejected_path: Path  # quarantine lines (GeoJSONSeq), in input order
    records: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # Reason values
    inputs: list[dict[str, str | int]] = field(default_factory=list)  # the manifest's entry per raw file


@dataclass
class _Classified:
    """The outcome of a piece or block: rows (in memory, or already in spool parts), quarantine lines."""

    rejected: list[bytes]
    reason_counts: Counter[str]
    on_time: pa.Table | None = None
    late: pa.Table | None = None
    on_time_part: tuple[Path, int] | None = None  # (spool part, rows) written by a worker
    late_part: tuple[Path, int] | None = None
    end_seq: int = 0  # past the last record's seq

    @property
    def records(self) -> int:
        if self.on_time is not None and self.late is not None:
            rows: int = self.on_time.num_rows + self.late.num_rows
        elif self.on_time_part is not None and self.late_part is not None:
            rows = self.on_time_part[1] + self.late_part[1]
        else:
            raise ValueError("a classified piece carries its rows either as tables or as spool parts")
        return rows + len(self.rejected)


def classify_inputs(
    store: ObjectStore, partition: dt.date, rules: Rules, limits: Limits, now: dt.datetime, work: Path
) -> Intake:
    """Every raw file listed for the partition, classified into spools under `work`."""
    spools = work / "spools"
    spools.mkdir()
    intake = Intake(Spool(spools, "on_time", ROW_SCHEMA), Spool(spools, "late", LATE_ROW_SCHEMA), work / "rejected")
    seq = 0
    with intake.rejected_path.open("wb") as rejected_out:
        for info in store.list_shallow(keys.raw_prefix(partition)):
            intake.inputs.append({"key": info.key, "size": info.size, "etag": info.etag})
            for outcome in _classify_file(store, info, partition, rules, limits, now, seq, intake, intake.inputs[-1]):
                intake.records += outcome.records
                seq = outcome.end_seq
                if outcome.on_time is not None:
                    intake.on_time.append(outcome.on_time)
                    intake.late.append(outcome.late)
                elif outcome.on_time_part is not None and outcome.late_part is not None:
                    intake.on_time.adopt(*outcome.on_time_part)
                    intake.late.adopt(*outcome.late_part)
                rejected_out.writelines(line + b"\n" for line in outcome.rejected)
                intake.reasons.update(outcome.reason_counts)
    intake.on_time.close()
    intake.late.close()
    return intake


def _classify_file(
    store: ObjectStore,
    info: ObjectInfo,
    partition: dt.date,
    rules: Rules,
    limits: Limits,
    now: dt.datetime,
    seq: int,
    intake: Intake,
    described: dict[str, str | int] | None = None,
) -> Iterator[_Classified]:
    """Outcomes of one raw file, piece by piece (or block by block), records numbered from `seq` on.
    `described` (the manifest's entry for the file) gets the file's etag, hashed while it is read, when
    the listing left it empty."""
    unhashed = described if described is not None and not described["etag"] else None
    if not is_raw_batch_file(info.key) or not _readable_key(info.key):
        why = "not a .geojson, .geojsonl or .ndjson file (optionally .gz)"
        line = reject_line(info.key, 0, b"", [(Reason.UNSUPPORTED_FILE, why)])
        yield _Classified([line], Counter({Reason.UNSUPPORTED_FILE.value: 1}), *_no_rows(), end_seq=seq + 1)
        if unhashed is not None:
            unhashed["etag"] = _etag(store, info.key)
        return
    hashing: _Hashing | None = None
    with store.open(info.key) as raw:
        stream: ByteStream = raw
        if unhashed is not None:
            stream = hashing = _Hashing(raw, store.etag_hash())
        workers = _process_count(info.size, limits)
        if workers > 1 and _is_line_file(info.key):
            blocks = line_blocks(open_decompressed(info.key, stream), BLOCK_BYTES, limits.max_record_bytes)
            yield from _blocks_in_processes(blocks, info.key, partition, rules, now, limits, seq, intake, workers)
        else:
            freeze_long_lived_objects()
            chunks = iter_chunks(
                info.key,
                stream,
                chunk_records=limits.chunk_records,
                max_record_bytes=limits.max_record_bytes,
                max_collection_bytes=limits.max_collection_bytes,
            )
            pieces = (piece for chunk in chunks for piece in _pieces(chunk, PIECE_RECORDS))
            for parsed in _parsed_ahead(pieces):
                outcome = classify_chunk(parsed, partition, rules, now, first_seq=seq)
                seq += outcome.records
                yield _Classified(outcome.rejected, outcome.reason_counts, outcome.on_time, outcome.late, end_seq=seq)
    if unhashed is not None and hashing is not None:  # read to the end: the hash is the file's; else hash it
        unhashed["etag"] = hashing.digest.hexdigest() if hashing.complete else _etag(store, info.key)


def _no_rows() -> tuple[pa.Table, pa.Table]:
    return ROW_SCHEMA.empty_table(), LATE_ROW_SCHEMA.empty_table()


def _is_line_file(key: str) -> bool:
    name = key.lower().removesuffix(".gz")
    return name.endswith(LINE_SUFFIXES)


def _readable_key(key: str) -> bool:
    """A landed object whose name no lake key can have (a control character, '//', '..') is quarantined
    as an unsupported file rather than stopping the run."""
    try:
        keys.key(*key.split("/"))
    except keys.UnsafeKeyError:
        return False
    return True


class _Hashing:
    """A reader that hashes what passes through it (hashlib lets go of the GIL on large blocks)."""

    def __init__(self, raw: IO[bytes], digest: hashlib._Hash):
        self.raw = raw
        self.digest = digest
        self.complete = False

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if data:
            self.digest.update(data)
        elif size != 0:
            self.complete = True
        return data

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        return self.raw.seek(offset, whence)

    def __getattr__(self, name: str) -> object:
        return getattr(self.raw, name)


def _etag(store: ObjectStore, key: str) -> str:
    info = store.head(key)
    return info.etag if info is not None else ""


# From this input size on, a line-delimited file is classified by worker processes, one per core: decoding
# JSON is Python work under the GIL, so threads cannot spread it. Below it, starting workers costs more
# than it saves.
PROCESS_MIN_BYTES = 64 << 20
# The text a worker takes at a time: about PIECE_RECORDS records of the benchmark's fields, so a block is
# classified in one or two whole-array passes, and the blocks in flight stay a few tens of MB.
BLOCK_BYTES = 8 << 20


def _process_count(size: int, limits: Limits) -> int:
    if limits.classify_processes is not None:
        return limits.classify_processes
    cores = min(_usable_cores(), MAX_PROCESSES)
    return cores if size >= PROCESS_MIN_BYTES and cores > 1 and _spawn_works() else 1


# Each worker holds the libraries and a block or two (a few hundred MB): more than this buys little.
MAX_PROCESSES = 4


def _usable_cores() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a pod's CPU limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


def _spawn_works() -> bool:
    """A spawned worker re-imports the parent's __main__ by path; code fed on stdin has no such file."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.exists(path)


@dataclass(frozen=True)
class _BlockJob:
    key: str
    block: LineBlock
    first_seq: int
    on_time_path: Path
    late_path: Path
    partition: dt.date
    rules: Rules
    now: dt.datetime
    max_record_bytes: int


def classify_block(job: _BlockJob) -> _Classified:
    """One block of lines split, decoded, classified and spooled (in a worker process, or here if the
    pool broke). Records are numbered from the block's first_seq on."""
    freeze_long_lived_objects()
    seq = job.first_seq
    on_time: list[pa.Table] = []
    late: list[pa.Table] = []
    rejected: list[bytes] = []
    counts: Counter[str] = Counter()
    for chunk in block_chunks(job.key, job.block, PIECE_RECORDS, job.max_record_bytes):
        outcome = classify_chunk(parse_chunk(chunk), job.partition, job.rules, job.now, first_seq=seq)
        seq += outcome.records
        on_time.append(outcome.on_time)
        late.append(outcome.late)
        rejected.extend(outcome.rejected)
        counts.update(outcome.reason_counts)
    on_time_rows = write_spool_part(job.on_time_path, ROW_SCHEMA, on_time)
    late_rows = write_spool_part(job.late_path, LATE_ROW_SCHEMA, late)
    return _Classified(
        rejected,
        counts,
        on_time_part=(job.on_time_path, on_time_rows),
        late_part=(job.late_path, late_rows),
        end_seq=seq,
    )


def _blocks_in_processes(
    blocks: Iterator[LineBlock],
    key: str,
    partition: dt.date,
    rules: Rules,
    now: dt.datetime,
    limits: Limits,
    seq: int,
    intake: Intake,
    workers: int,
) -> Iterator[_Classified]:
    """Blocks classified by `workers` processes, outcomes back in input order; at most two blocks per
    worker in flight, so memory stays bounded.

    A block's records are numbered from `seq` plus the lines before it: a line holds at most one record,
    so the blocks' numbers never overlap and no block waits for the one before it to be counted.

    A worker that dies (the OOM killer's SIGKILL) breaks the whole pool: every block it held, and every
    block after, is classified in this process instead, so the run ends with the lake a clean run makes."""
    pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    )
    pending: collections.deque[tuple[Future[_Classified] | None, _BlockJob]] = collections.deque()
    try:
        for block in blocks:
            job = _BlockJob(
                key,
                block,
                seq + block.first_line - 1,
                intake.on_time.new_part_path(),
                intake.late.new_part_path(),
                partition,
                rules,
                now,
                limits.max_record_bytes,
            )
            future = None
            if pool is not None:
                try:
                    future = pool.submit(classify_block, job)
                except BrokenProcessPool:
                    log.warning("classify worker process died; classifying the remaining blocks in this process")
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = None
            pending.append((future, job))
            if len(pending) >= 2 * workers:
                yield _block_result(*pending.popleft())
        while pending:
            yield _block_result(*pending.popleft())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _block_result(future: Future[_Classified] | None, job: _BlockJob) -> _Classified:
    """A worker's outcome; with no worker (the pool broke), the block is classified in this process."""
    if future is not None:
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("classify worker process died; classifying its block in this process instead")
    return classify_block(job)


class _Done:
    """What the parse-ahead thread puts last: every piece was parsed."""


_DONE = _Done()
# Records parsed and classified together: large enough for whole-array calls to pay off, small enough that
# the arrays stay in cache and memory does not grow with `chunk_records`.
PIECE_RECORDS = 8192


def _pieces(chunk: RawChunk, size: int) -> Iterator[RawChunk]:
    """The chunk in consecutive pieces; records rejected while reading stay last, as in the whole chunk."""
    if len(chunk.texts) <= size:
        yield chunk
        return
    for start in range(0, len(chunk.texts), size):
        end = start + size
        last = end >= len(chunk.texts)
        yield RawChunk(
            chunk.source_key,
            chunk.texts[start:end],
            chunk.lines[start:end],
            chunk.collection_crs,
            chunk.read_rejects if last else [],
        )


@functools.cache
def freeze_long_lived_objects() -> None:
    """Once per process, before its first chunk: what is alive by then (the imported libraries' objects,
    well over 100,000 in a worker) moves out of the cyclic collector's reach. Its full collections would
    otherwise scan them again and again while each chunk makes and drops thousands of records' models,
    which doubled the cost of validating the chunks it fell on."""
    gc.collect()
    gc.freeze()


def release_freed_memory() -> None:
    """Between the steps of a large run: hand memory freed by Arrow's pool and by malloc back to the kernel,
    so the high-water marks of the two allocators do not stack up step after step."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _parsed_ahead(pieces: Iterator[RawChunk], depth: int = 1) -> Iterator[ParsedChunk]:
    """Read and JSON-decode the next chunk in a helper thread while the caller classifies this one.

    Decoding is Python work that holds the GIL; classifying spends much of its time in GEOS, PROJ, numpy
    and Arrow, which release it: two threads keep both cores busy. At most `depth` parsed chunks wait.
    """
    ready: queue.Queue[ParsedChunk | BaseException | _Done] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in pieces:
                parsed = parse_chunk(piece)
                while not stop.is_set():
                    try:
                        ready.put(parsed, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)

    worker = threading.Thread(target=produce, name="parse-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        worker.join()
