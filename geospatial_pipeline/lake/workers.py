"""Large line-delimited files classified by worker processes, one per usable core, a block of whole lines
each: a worker splits, decodes, classifies and spools its block itself, so both cores decode JSON (Python
work under the GIL) and no row crosses a pipe. A worker that dies leaves its blocks to this process.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import functools
import gc
import logging
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.partition import classify_chunk
from geospatial_pipeline.core.reading import LineBlock, block_chunks
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.spool import LATE_ROW_SCHEMA, ROW_SCHEMA, Spool, write_spool_part

log = logging.getLogger(__name__)

# Records parsed and classified together: large enough for whole-array calls to pay off, small enough that
# the arrays stay in cache and memory does not grow with `chunk_records`.
PIECE_RECORDS = 8192


@dataclass
class Classified:
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


# From this input size on, a line-delimited file is classified by worker processes, one per core: decoding
# JSON is Python work under the GIL, so threads cannot spread it. Below it, starting workers costs more
# than it saves.
PROCESS_MIN_BYTES = 64 << 20
# The text a worker takes at a time: about PIECE_RECORDS records of the benchmark's fields, so a block is
# classified in one or two whole-array passes, and the blocks in flight stay a few tens of MB.
BLOCK_BYTES = 8 << 20


def process_count(size: int, limits: Limits) -> int:
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


def classify_block(job: _BlockJob) -> Classified:
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
    return Classified(
        rejected,
        counts,
        on_time_part=(job.on_time_path, on_time_rows),
        late_part=(job.late_path, late_rows),
        end_seq=seq,
    )


def blocks_in_processes(
    blocks: Iterator[LineBlock],
    key: str,
    partition: dt.date,
    rules: Rules,
    now: dt.datetime,
    limits: Limits,
    seq: int,
    spools: tuple[Spool, Spool],
    workers: int,
) -> Iterator[Classified]:
    """Blocks classified by `workers` processes, outcomes back in input order; at most two blocks per
    worker in flight, so memory stays bounded.

    A block's records are numbered from `seq` plus the lines before it: a line holds at most one record,
    so the blocks' numbers never overlap and no block waits for the one before it to be counted.

    A worker that dies (the OOM killer's SIGKILL) breaks the whole pool: every block it held, and every
    block after, is classified in this process instead, so the run ends with the lake a clean run makes."""
    pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    )
    pending: collections.deque[tuple[Future[Classified] | None, _BlockJob]] = collections.deque()
    try:
        for block in blocks:
            job = _BlockJob(
                key,
                block,
                seq + block.first_line - 1,
                spools[0].new_part_path(),  # on time
                spools[1].new_part_path(),  # late
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
                    _shut_down(pool)
                    pool = None
            pending.append((future, job))
            if len(pending) >= 2 * workers:
                yield _block_result(*pending.popleft())
        while pending:
            yield _block_result(*pending.popleft())
    finally:
        if pool is not None:
            _shut_down(pool)


def _shut_down(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down, first stopping the workers a broken pool left alive. Python 3.11's executor joins
    them without stopping them, and one waiting on the task queue's lock, which the killed worker may have
    held, waits forever (Python 3.12 terminates them itself, gh-94777)."""
    if getattr(pool, "_broken", False):
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _block_result(future: Future[Classified] | None, job: _BlockJob) -> Classified:
    """A worker's outcome; with no worker (the pool broke), the block is classified in this process."""
    if future is not None:
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("classify worker process died; classifying its block in this process instead")
    return classify_block(job)


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
