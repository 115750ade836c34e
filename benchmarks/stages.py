"""CPU per record of each classify stage, on one core, for the first records of a batch file.

    python -m benchmarks.stages benchmarks/out/real-1000000-s42.geojsonl --records 100000

The partition run does these stages on its workers, one chunk at a time; here they run in this process,
each timed on its own (process CPU, so other work on the machine inflates them less than wall time):
scan (JSON structure and numbers), properties (Pydantic), geometry read (flat arrays), parse (the three
and the bookkeeping between them), then classify (the rules: time, spatial checks, reprojection,
measures, encodings). docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.batches import WORLD
from geospatial_pipeline.core import scan
from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.geometry.read import read_geometries
from geospatial_pipeline.core.partition import classify_chunk
from geospatial_pipeline.core.reading import RawChunk, iter_chunks
from geospatial_pipeline.core.reasons import Verdicts
from geospatial_pipeline.core.records import property_columns
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.lake.workers import freeze_long_lived_objects
from geospatial_pipeline.settings import load_settings

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "config.yaml"
PARTITION, NOW = dt.date(2025, 3, 3), dt.datetime(2025, 3, 5, 12, tzinfo=dt.UTC)  # the batches' partition


def read_chunks(path: Path, records: int, chunk_records: int) -> list[RawChunk]:
    chunks: list[RawChunk] = []
    with path.open("rb") as stream:
        for chunk in iter_chunks(
            path.name, stream, chunk_records=chunk_records, max_record_bytes=1 << 24, max_collection_bytes=1 << 30
        ):
            chunks.append(chunk)
            if sum(len(c.texts) for c in chunks) >= records:
                break
    return chunks


def stage_costs(chunks: list[RawChunk], rules: Rules) -> dict[str, float]:
    """Seconds of process CPU per stage, summed over the chunks (after one untimed warm-up chunk)."""
    classify_chunk(parse_chunk(chunks[0]), PARTITION, rules, NOW)  # compiled kernels loaded, caches warm
    freeze_long_lived_objects()  # as a worker does before its first chunk
    spent: dict[str, float] = {}

    def timed(stage: str, work: Callable[..., Any], *args: Any) -> Any:
        start = time.process_time()
        out = work(*args)
        spent[stage] = spent.get(stage, 0.0) + time.process_time() - start
        return out

    for chunk in chunks:
        lengths = np.fromiter(map(len, chunk.texts), np.int64, len(chunk.texts))
        ends = np.cumsum(lengths)
        joined = b"".join(chunk.texts)
        scanned = timed("scan", scan.scan, joined, ends - lengths, ends)
        texts = [joined[s:e] for s, e in zip(scanned.props_start.tolist(), scanned.props_end.tolist(), strict=True)]
        timed("properties", property_columns, texts, scanned.props_nonfinite)
        timed("geometry read", read_geometries, scanned, Verdicts(len(texts)))
        parsed = timed("parse (the three, and between them)", parse_chunk, chunk)
        timed("classify (rules, reprojection, measures, encodings)", classify_chunk, parsed, PARTITION, rules, NOW)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per record of each classify stage, on one core.")
    parser.add_argument("file", type=Path, help="a batch file (GeoJSONSeq), e.g. from benchmarks/out/")
    parser.add_argument("--records", type=int, default=100_000, help="how many of its first records")
    parser.add_argument(
        "--world-bounds", action="store_true", help="bounds covering the world (default for real-*.geojsonl)"
    )
    args = parser.parse_args(argv)
    world = args.world_bounds or args.file.name.startswith("real-")
    settings = load_settings(CONFIG, **(WORLD if world else {}))
    chunks = read_chunks(args.file, args.records, settings.limits().chunk_records)
    n = sum(len(c.texts) for c in chunks)
    spent = stage_costs(chunks, settings.rules())
    print(f"{args.file.name}: {n:,} records, {sum(map(len, (t for c in chunks for t in c.texts))) / n:,.0f} B each")
    for stage, seconds in spent.items():
        print(f"  {stage:52s} {seconds / n * 1e6:7.2f} µs/record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
