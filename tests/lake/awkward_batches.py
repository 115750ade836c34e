"""A partition's landing batch with every kind of line a reader must handle, and runs of it with the
classify pass in this process or on worker processes (tests of intake and workers)."""

from __future__ import annotations

import dataclasses
import gzip
import sys
from pathlib import Path

from benchmarks.generate import NOW, PARTITION, _block
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import run_partition
from geospatial_pipeline.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from reliability_support import FIXTURES  # noqa: E402

MAX_RECORD_BYTES = 4_000


def awkward_batch(records: int) -> bytes:
    """Generated fields (late, invalid, UTM, re-delivered) and every kind of line a reader must handle."""
    lines = _block((7, 0, 0, records)).splitlines()
    lines[5] = b""  # blank lines
    lines[9] = b"  \t"
    lines[11] = lines[11] + b"\r"  # CRLF
    lines[13] = b"\x1e" + lines[13]  # RFC 8142 record separator
    lines[17] = b'{"type": "Feature", "geometry": '  # malformed JSON
    lines[19] = b'{"type": "Feature", "properties": {"pad": "' + b"x" * (3 * MAX_RECORD_BYTES) + b'"}}'  # over-long
    lines[23] = lines[3]  # the same record twice: the later copy wins
    lines += lines[100:140]  # re-deliveries far apart, in other blocks
    lines.append(
        b'{"type": "Feature", "properties": {"pad": "' + b"y" * (2 * MAX_RECORD_BYTES)
    )  # over-long, at the end
    return b"\n".join(lines)  # the last line has no newline


def lake_of(root: Path, batch: bytes) -> Path:
    raw = root / "raw" / PARTITION.isoformat()
    raw.mkdir(parents=True)
    (raw / "a-fields.geojsonl").write_bytes(batch)
    whole = gzip.compress(batch, mtime=0)
    (raw / "b-cut.geojsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])  # ends mid-stream: a read error
    (raw / "c-fields.ndjson").write_bytes((FIXTURES / "raw" / "2025-01-03" / "fields.ndjson").read_bytes())
    (raw / "d-collection.geojson").write_bytes((FIXTURES / "raw" / "2025-01-02" / "fields.geojson").read_bytes())
    return root


def settings_for(lake: Path, processes: int):
    settings = load_settings(
        FIXTURES / "config.yaml", local_lake_path=lake, max_record_bytes=MAX_RECORD_BYTES, chunk_records=500
    )
    return settings, dataclasses.replace(settings.limits(), classify_processes=processes)


def run(lake: Path, processes: int):
    settings, limits = settings_for(lake, processes)
    return run_partition(
        LocalStore(lake),
        PARTITION,
        settings.rules(),
        target_crs=settings.target_crs,
        limits=limits,
        config_digest="intake-tests",
        run_id="test",
        now=NOW,
    )
