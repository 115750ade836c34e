"""Benchmark the partition run on three batches against each batch's floor; prints the tables.

    python -m benchmarks.run                  # 100k records of each batch (quick)
    python -m benchmarks.run --large          # 1M of each (with floors and baselines), 4M (pipeline, memory);
                                              # floors and pipeline in 3 alternating rounds, medians
    make bench ARGS="--records 10000 --batches default,real"

The batches (batches.py): today's uniform synthetic one, a spelling-varied synthetic one, and a real-shaped
one built from `../shared/real-parcels` (skipped, with a message, where that folder is absent). Each is
generated once (seeded) into benchmarks/out/ and reused. A batch's floor, measured in the same run as its
pipeline: pyarrow JSON → Parquet of the same lines (split by geometry type and column kinds where pyarrow
needs it; floor_split.py), plus creating as many small files as the run wrote late objects (two per late
field, of their sizes). Every measured step runs in its own process (steps.py). The lake of a pipeline run
lives in the system temp folder, the way a worker's scratch disk would.

Every step's many small files stay until the whole benchmark ends, then go at once. Deleting a lake between
runs made every run after the first slower for a reason that has nothing to do with the pipeline: ext4
without a journal (this VM's root file system) will not reuse an inode freed in the last 60 s, or 360 s
while its inode-table block is dirty, and scans past each such inode on every file it creates. Right after
a 1M lake (200,000 late objects) was deleted, creating a file cost 200-560 µs of kernel time instead of 30.
A step's few big files (its Parquet outputs) go as soon as it is measured, so the disk holds the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.batches import Batch, selected
from benchmarks.generate import PARTITION
from benchmarks.report import notes, table, targets
from benchmarks.steps import REPO, SCRATCH_ENV, median_run

DEFAULT_CACHE = Path(__file__).resolve().parent / "out"
LOADS: list[float] = []  # the 1-minute load average as each step started and at the end


def image_allocator_env(dockerfile: Path = REPO / "Dockerfile") -> dict[str, str]:
    """The glibc allocator settings the image runs with (MALLOC_*=... in its ENV), so a step measures the
    process the cluster runs; the Dockerfile is their one source."""
    return dict(re.findall(r"\b(MALLOC_[A-Z_]+_)=(\d+)", dockerfile.read_text()))


def run_child(kind: str, **params) -> dict:
    """One step in a fresh process (steps.py); its JSON line back."""
    LOADS.append(os.getloadavg()[0])
    env = dict(os.environ, PYTHONPATH=str(REPO), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.update(image_allocator_env())
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.steps", kind, json.dumps(params)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step {kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_rounds(steps: dict[str, tuple[str, dict]], repeat: int) -> dict[str, dict]:
    """`repeat` rounds of the steps (name -> kind, params), one of each per round, so a slow spell of the
    machine or a fuller page cache later on hits every step alike. Per step: the median run's figures,
    every run's wall time, the highest peak RSS."""
    runs: dict[str, list[dict]] = {name: [] for name in steps}
    for _ in range(max(1, repeat)):
        for name, (kind, params) in steps.items():
            runs[name].append(run_child(kind, **params))
    return {
        name: {
            **median_run(r),
            "wall_runs": [x["wall_s"] for x in r],
            "peak_rss_mib": max(x["peak_rss_mib"] for x in r),
        }
        for name, r in runs.items()
    }


def small_file_sizes(pipeline: dict) -> dict[str, int]:
    """{size in bytes: count} for the small-file floor: two files per late field (the run's manifest
    count), split between the object kinds the run wrote in their proportions, each at its mean size."""
    total = 2 * pipeline["counts"]["late"]
    written = pipeline.get("late_object_sizes", {})
    objects = sum(count for count, _ in written.values())
    sizes: dict[str, int] = {}
    for count, total_bytes in written.values():
        if count:
            key = str(round(total_bytes / count))  # JSON keys are text
            sizes[key] = sizes.get(key, 0) + round(total * count / objects)
    return sizes


def prepare(batch: Batch, records: int, args: argparse.Namespace, *, split: bool) -> dict:
    """The batch file (and its floor split), made in a process of its own so this one stays small."""
    parcels = str(args.real_parcels) if args.real_parcels and batch.name == "real" else ""
    params = {"batch": batch.name, "records": records, "seed": args.seed, "cache": str(args.cache)}
    return run_child("prepare", **params, parcels=parcels, split=split)


def measure(batch: Batch, records: int, args: argparse.Namespace, *, baselines: bool, extras: bool) -> dict:
    say = lambda msg: args.verbose and print(f"  [{batch.name} {records:,}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    say("generating (once) or reusing the batch" + (", splitting it for pyarrow (once)" if baselines else ""))
    prepared = prepare(batch, records, args, split=baselines)
    source = Path(prepared["source"])
    out: dict = {"batch": batch.name, "records": records, "input_mib": source.stat().st_size / (1 << 20)}
    sample = args.cache / f"late-sample-{batch.name}-{records}-s{args.seed}.parquet"
    pipeline = {"source": str(source), "settings": batch.settings}
    if extras:
        pipeline |= {"sample": str(sample), "sample_rows": args.s3_objects // 2}
    steps = {"pipeline": ("pipeline", pipeline)}
    repeat = args.repeat if baselines else 1
    if baselines:
        split = out["split"] = prepared["split"]
        steps = {
            "floor": ("floor", {"sources": [f["path"] for f in split["files"]], "mode": "json"}),
            "raw": ("floor", {"sources": [str(source)], "mode": "raw"}),
            **steps,
        }
    say(f"{' / '.join(steps)}, {repeat} round(s)")
    out.update(run_rounds(steps, repeat))
    if baselines:
        say("small-file floor")
        out["files"] = run_child("files", sizes=small_file_sizes(out["pipeline"]))
        if not args.skip_reference:
            say("per-record reference")
            out["reference"] = run_child("reference", source=str(source))
    if extras and not args.skip_s3:
        say("S3 late objects")
        out["s3"] = run_child("s3", sample=str(sample), concurrency=args.s3_concurrency, rounds=args.s3_rounds)
    if extras and not args.skip_dagster:
        dagster_source = prepare(batch, args.dagster_records, args, split=False)["source"]
        say("Dagster end to end")
        out["dagster"] = run_child("dagster", source=dagster_source, records=args.dagster_records)
    return out


def machine() -> str:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {system}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the partition run; prints Markdown tables.")
    parser.add_argument("--records", type=int, default=100_000, help="batch size of the quick run")
    parser.add_argument("--large", action="store_true", help="1M records (with baselines) and 4M (memory) instead")
    parser.add_argument("--large-records", type=int, default=1_000_000)
    parser.add_argument("--memory-records", type=int, default=4_000_000)
    parser.add_argument("--batches", default="default,varied,real", help="comma-separated: default, varied, real")
    parser.add_argument("--real-parcels", type=Path, help="the parcels file (default: ../shared/real-parcels/...)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="generated batches are kept here")
    parser.add_argument("--s3-objects", type=int, default=2_000, help="late objects PUT in the S3 step")
    parser.add_argument("--s3-concurrency", type=int, default=16)
    parser.add_argument("--s3-rounds", type=int, default=3, help="alternating sequential/pooled rounds (median)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of the floors and the pipeline per size, the median reported (default: 3 with --large, else 1)",
    )
    parser.add_argument("--dagster-records", type=int, default=10_000)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.large else 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    batches, skipped = selected(args.batches, args.real_parcels)
    for why in skipped.values():
        print(why, file=sys.stderr, flush=True)
    if not batches:
        print("no batch to measure", file=sys.stderr)
        return 1
    sizes = [(args.large_records, True), (args.memory_records, False)] if args.large else [(args.records, True)]
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:  # every step's files, removed at the end
        os.environ[SCRATCH_ENV] = scratch
        for n, (records, baselines) in enumerate(sizes):
            for batch in batches:
                extras = n == 0 and batch.name == "default"
                result = measure(batch, records, args, baselines=baselines, extras=extras)
                result["memory_only"] = not baselines
                results.append(result)
    print(f"Machine: {machine()}")
    # Other work on the machine inflates every time here; the 1-minute load average as each step started
    # shows how much there was (this benchmark itself keeps it near 1-2 on two cores).
    LOADS.append(os.getloadavg()[0])
    print(
        f"Load average (1 min) as the steps started: median {statistics.median(LOADS):.1f}, "
        f"highest {max(LOADS):.1f} over {len(LOADS)} readings"
    )
    print(
        f"Batches: seeded (seed {args.seed}) {', '.join(b.name for b in batches)}, partition {PARTITION}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )
    for why in skipped.values():
        print(why)
    print()
    print(table(results))
    print()
    print(notes(results))
    print()
    print(targets(results, skipped))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    if args.json:
        payload = {"machine": machine(), "loads": LOADS, "skipped": skipped, "results": results}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
