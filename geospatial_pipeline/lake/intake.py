"""The classify pass of a partition run: every raw file of the landing batch, through the rules, into two
spools (on-time and late rows, in input order) and the quarantine lines, with nothing published yet.

A large line-delimited file is cut into blocks of whole lines for worker processes (workers.py): this
process only reads, cuts and hashes. Everything else is classified here, a piece at a time, parsing the
next piece in a thread while this one is classified.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa

from geospatial_pipeline.core.features import ParsedChunk, parse_chunk
from geospatial_pipeline.core.partition import classify_chunk, reject_line
from geospatial_pipeline.core.reading import (
    LINE_SUFFIXES,
    ByteStream,
    RawChunk,
    is_raw_batch_file,
    iter_chunks,
    line_blocks,
    open_decompressed,
)
from geospatial_pipeline.core.reasons import Reason
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.lake import keys, workers
from geospatial_pipeline.lake.limits import Limits
from geospatial_pipeline.lake.spool import LATE_ROW_SCHEMA, ROW_SCHEMA, Spool
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore
from geospatial_pipeline.lake.workers import PIECE_RECORDS, Classified, freeze_long_lived_objects

log = logging.getLogger(__name__)


@dataclass
class Intake:
    """What the classify pass leaves for publishing."""

    on_time: Spool
    late: Spool
    rejected_path: Path  # quarantine lines (GeoJSONSeq), in input order
    records: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # Reason values
    inputs: list[dict[str, str | int]] = field(default_factory=list)  # the manifest's entry per raw file


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
) -> Iterator[Classified]:
    """Outcomes of one raw file, piece by piece (or block by block), records numbered from `seq` on.
    `described` (the manifest's entry for the file) gets the file's etag, hashed while it is read, when
    the listing left it empty."""
    unhashed = described if described is not None and not described["etag"] else None
    if not is_raw_batch_file(info.key) or not _readable_key(info.key):
        why = "not a .geojson, .geojsonl or .ndjson file (optionally .gz)"
        line = reject_line(info.key, 0, b"", [(Reason.UNSUPPORTED_FILE, why)])
        yield Classified([line], Counter({Reason.UNSUPPORTED_FILE.value: 1}), *_no_rows(), end_seq=seq + 1)
        if unhashed is not None:
            unhashed["etag"] = _etag(store, info.key)
        return
    hashing: _Hashing | None = None
    with store.open(info.key) as raw:
        stream: ByteStream = raw
        if unhashed is not None:
            stream = hashing = _Hashing(raw, store.etag_hash())
        processes = workers.process_count(info.size, limits)
        if processes > 1 and _is_line_file(info.key):
            blocks = line_blocks(open_decompressed(info.key, stream), workers.BLOCK_BYTES, limits.max_record_bytes)
            yield from workers.blocks_in_processes(
                blocks, info.key, partition, rules, now, limits, seq, (intake.on_time, intake.late), processes
            )
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
                yield Classified(outcome.rejected, outcome.reason_counts, outcome.on_time, outcome.late, end_seq=seq)
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


class _Done:
    """What the parse-ahead thread puts last: every piece was parsed."""


_DONE = _Done()


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
