"""The benchmark runs end to end on tiny batches so it cannot rot; its numbers are reported, not asserted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.generate_real import parcels_file

REPO = Path(__file__).resolve().parents[1]
TITLES = {"default": "default synthetic", "varied": "spelling-varied synthetic", "real": "real-shaped"}
BASELINE_ROWS = [
    "floor: pyarrow JSON → Parquet",
    "floor: small files",
    "floor: the two together",
    "raw copy: lines as text → Parquet",
    "per-record reference (seed loop)",
    "pipeline (local lake)",
]
SMALL, MEMORY = 300, 600
NUMBER = r"[\d,]+(?:\.\d+)?"


def run_benchmark(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    results = tmp_path / "results.json"
    scratch = tmp_path / "tmp"  # the benchmark's lakes and floors, kept until it ends
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--cache", str(tmp_path / "cache"), "--json", str(results), *args],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, results, scratch


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.slow
@pytest.mark.skipif(parcels_file()[0] is None, reason=f"real parcels absent: {parcels_file()[1]}")
def test_benchmark_prints_every_batch_with_its_floor_and_targets(tmp_path):
    proc, results, scratch = run_benchmark(
        tmp_path,
        "--large",
        *("--large-records", str(SMALL), "--memory-records", str(MEMORY), "--repeat", "2"),
        *("--s3-objects", "60", "--s3-rounds", "2", "--dagster-records", "300"),
    )
    out = proc.stdout
    assert out.startswith("Machine: ")
    assert re.search(
        r"Load average \(1 min\) as the steps started: median [\d.]+, highest [\d.]+ over \d+ readings", out
    )
    rows = [cells(line) for line in out.splitlines() if line.startswith("| ") and len(cells(line)) == 10]
    assert rows[0][:3] == ["batch", "run", "records"]
    body = rows[1:]
    for title in TITLES.values():
        mine = [r for r in body if r[0] == title]
        names = [re.sub(r" \(\d+ files?\)$", "", r[1]) for r in mine]
        names = [re.sub(r"^floor: [\d,]+ small files$", "floor: small files", n) for n in names]
        assert names == [*BASELINE_ROWS, "pipeline (local lake)"], title
        for row in mine:  # records, wall, rate, CPU, RSS: numbers on every row
            records, wall, rate, cpu, rss = (float(c.replace(",", "")) for c in row[2:7])
            assert records in (SMALL, MEMORY) and wall >= 0 and rate > 0 and cpu >= 0 and rss > 0, row
        ratio_rows = {r[1]: r for r in mine if r[7]}
        assert len(ratio_rows) == 3  # raw copy, per-record, pipeline against the floor
        assert all(re.fullmatch(r"[\d.]+x", r[7]) for r in ratio_rows.values())
        pipeline_small, pipeline_memory = mine[-2], mine[-1]
        assert re.fullmatch(r"[\d.]+x faster", pipeline_small[8])
        assert pipeline_memory[2] == f"{MEMORY:,}" and re.fullmatch(r"[\d.]+x", pipeline_memory[9])

    targets = [cells(line) for line in out.splitlines() if line.startswith("| ") and len(cells(line)) == 5]
    assert targets[0] == ["target", *TITLES.values(), "every batch"]
    assert len(targets) == 5  # header, four targets
    for row in targets[1:]:
        assert all(re.fullmatch(r"(met|NOT met) \(.+\)", c) for c in row[1:4]), row
        assert row[4] == ("met" if all(c.startswith("met") for c in row[1:4]) else "NOT met"), row

    data = json.loads(results.read_text())["results"]
    assert [(r["batch"], r["records"]) for r in data] == [
        *((b, SMALL) for b in TITLES),
        *((b, MEMORY) for b in TITLES),
    ]
    for res in data:
        counts = res["pipeline"]["counts"]
        assert counts["input_records"] == res["records"]
        assert sum(counts[k] for k in ("on_time", "late", "rejected", "superseded")) == res["records"]
        assert counts["late"] > 0
        phases = res["pipeline"]["phases"]  # every phase timed: none lost to a refactor of the run
        assert {"read+validate", "late-object lane", "GeoParquet", "late batches", "publish"} <= set(phases)
        if res["records"] == SMALL:
            assert res["files"]["files"] == pytest.approx(2 * counts["late"], abs=2)
            assert res["split"]["left_out"] == 0 and sum(f["records"] for f in res["split"]["files"]) == SMALL
            for step in (res["pipeline"], res["floor"], res["raw"]):
                assert len(step["wall_runs"]) == 2 and step["wall_s"] == min(step["wall_runs"])
    varied_split = {f["geometry"] for f in data[1]["split"]["files"]}
    assert varied_split == {"Polygon", "MultiPolygon"}
    assert data[1]["pipeline"]["counts"]["rejected"] > 0
    s3_objects = data[0]["s3"]["sequential"]["objects"]  # two per late row of the sample (up to 30 rows)
    assert s3_objects == data[0]["s3"]["pooled"]["objects"] == 2 * min(30, data[0]["pipeline"]["counts"]["late"])
    assert data[0]["s3"]["pooled"]["server_cpu_s"] > 0  # moto's own process did the serving
    assert re.search(rf"S3 late objects .* sequential {NUMBER}/s, pooled .* = [\d.]+x; client CPU [\d.]+ ms", out)
    assert re.search(r"Dagster end to end \(default synthetic batch\), 300 fields, .*materialize [\d.]+ s", out)
    assert re.search(rf"floor: pyarrow.json read 2 files \(Polygon {NUMBER}, MultiPolygon {NUMBER}\)", out)
    assert out.count("median of 2 alternating rounds") == 4  # three batches, and S3's two modes
    assert list(scratch.iterdir()) == []  # every step's files went at the end


@pytest.mark.slow
def test_a_missing_real_parcels_file_skips_that_batch_with_a_message(tmp_path):
    proc, results, _ = run_benchmark(
        tmp_path,
        *("--records", str(SMALL), "--batches", "default,real", "--real-parcels", str(tmp_path / "nowhere.gz")),
        *("--skip-s3", "--skip-dagster", "--skip-reference"),
    )
    message = f"real-shaped batch skipped: {tmp_path / 'nowhere.gz'} does not exist"
    assert message in proc.stderr and message in proc.stdout
    target_rows = [cells(line) for line in proc.stdout.splitlines() if line.startswith("| pipeline at most")]
    assert target_rows[0][3] == "skipped" and target_rows[0][4] in ("open (not measured on every batch)", "NOT met")
    assert [r["batch"] for r in json.loads(results.read_text())["results"]] == ["default"]


def test_benchmark_steps_run_with_the_images_allocator_settings() -> None:
    from benchmarks.run import image_allocator_env

    assert image_allocator_env() == {"MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "67108864"}
