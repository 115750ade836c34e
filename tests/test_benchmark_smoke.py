"""The benchmark runs end to end at a small size so it cannot rot; its numbers are reported, not asserted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROWS = [
    "I/O floor: pyarrow JSON → Parquet",
    "raw copy: lines as text → Parquet",
    "per-record reference (seed loop)",
    "pipeline (local lake)",
]


@pytest.mark.slow
def test_benchmark_prints_its_table_at_10k(tmp_path):
    results = tmp_path / "results.json"
    scratch = tmp_path / "tmp"  # the benchmark's lakes and floors, kept until it ends
    scratch.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--records",
            "10000",
            "--s3-objects",
            "100",
            "--dagster-records",
            "2000",
            "--repeat",
            "2",
            "--s3-rounds",
            "2",
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(results),
        ],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("Machine: ")
    for name in ROWS:
        [line] = [line for line in out.splitlines() if line.startswith(f"| {name} |")]
        cells = [c.strip() for c in line.strip("|").split("|")]
        records, wall, rate, cpu, rss = (float(c.replace(",", "")) for c in cells[1:6])
        # a step of a few hundredths of a second shows 0.0 CPU seconds at the table's precision
        assert records == 10_000 and wall > 0 and rate > 0 and cpu >= 0 and rss > 0, line
        assert cpu > 0 or wall < 0.5, line
    pipeline_line = next(line for line in out.splitlines() if line.startswith("| pipeline (local lake) |"))
    assert re.search(r"\| [\d.]+x \| [\d.]+x faster \|$", pipeline_line)
    assert re.search(r"S3 late objects .* sequential [\d,]+/s, pooled .* = [\d.]+x; client CPU [\d.]+ ms/object", out)
    assert re.search(r"Dagster end to end, 2,000 fields, ephemeral instance: materialize [\d.]+ s", out)

    data = json.loads(results.read_text())["results"][0]
    counts = data["pipeline"]["counts"]
    assert counts["input_records"] == 10_000
    assert sum(counts[k] for k in ("on_time", "late", "rejected", "superseded")) == 10_000
    assert counts["late"] > 0 and counts["rejected"] > 0
    assert data["s3"]["sequential"]["objects"] == data["s3"]["pooled"]["objects"] == 100
    assert data["s3"]["pooled"]["server_cpu_s"] > 0  # moto's own process did the serving
    assert re.search(r"moto's server CPU [\d.]+ ms/object \(one process: it caps the pooled rate near [\d,]+/s\)", out)
    # medians: every run kept, the reported one is the lower middle
    for step in (data["pipeline"], data["floor"], data["s3"]["sequential"], data["s3"]["pooled"]):
        assert len(step["wall_runs"]) == 2 and step["wall_s"] == min(step["wall_runs"])
    assert out.count("median of 2 alternating rounds") == 2  # floors and pipeline; S3's two modes
    assert list(scratch.iterdir()) == []  # every step's files went at the end
    assert data["files"]["files"] == 2_000 and data["files"]["wall_s"] > 0
    assert re.search(r"small-file floor on this filesystem .*: [\d,]+ µs/file, so the [\d,]+ late objects", out)
    assert re.search(
        r"the late-object lane [\d.]+ s beside dedupe, the GeoParquet \([\d.]+ s\) and the late batches "
        r"\([\d.]+ s\), whose thread then wrote late objects too for [\d.]+ s \(the objects took [\d.]+ s summed",
        out,
    )
