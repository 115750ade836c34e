"""Limits of a partition run that keep one bad record or file from exhausting memory, and its parallelism."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    chunk_records: int = 50_000
    max_record_bytes: int = 1_000_000
    max_collection_bytes: int = 64 << 20
    late_write_concurrency: int = 16
    # Worker processes for classifying a large input file: None = one per core from PROCESS_MIN_BYTES on.
    classify_processes: int | None = None
