"""Benchmark the partition run against its baselines and print one table.

    python -m benchmarks.run                  # 100k records (quick)
    python -m benchmarks.run --large          # also 1M (with baselines) and 4M (pipeline, for memory);
                                              # floors and pipeline in 3 alternating rounds, medians
    make bench ARGS="--records 10000"

Every measured step runs in its own subprocess, so each peak RSS is that step's own `ru_maxrss` and no
step inherits another's heap. Batches are generated once (seeded) into benchmarks/out/ and reused. The
lake of a pipeline run lives in the system temp folder, the way a worker's scratch disk would.

Every step's files stay until the whole benchmark ends, then go at once. Deleting a lake between runs
made every run after the first slower for a reason that has nothing to do with the pipeline: ext4
without a journal (this VM's root file system) will not reuse an inode freed in the last 60 s, or 360 s
while its inode-table block is dirty, and scans past each such inode on every file it creates. Right after
a 1M lake (200,000 late objects) was deleted, creating a file cost 200-560 µs of kernel time instead of 30.
For the same reason each step starts after a sync: the gigabytes earlier steps left unwritten would
otherwise be written back, and their writers throttled, during whichever step came next.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.generate import NOW, PARTITION, batch_path, generate

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "fixtures" / "config.yaml"  # Central Europe bounds; the generated fields lie inside them
DEFAULT_CACHE = Path(__file__).resolve().parent / "out"
# The small-file floor: this many files of about a late object's size (its per-file cost is what counts).
SMALL_FILES, SMALL_FILE_BYTES = 20_000, 1_500
SCRATCH_ENV = "BENCH_SCRATCH"  # the parent's scratch root, where each step makes its folder


# --- children: one measured step each, reporting a JSON line on stdout ---------------------------------


class TreeMemory:
    """Peak resident memory of this process and its children together, sampled (worker processes count)."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.peak = 0
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        import psutil

        # Finding the children scans every process on the machine: done every tenth sample only (the
        # workers live for the whole step), so the sampler takes next to nothing from the step it measures.
        tree: list = []
        for sample in itertools.count():
            if self._stop.wait(interval):
                return
            if sample % 10 == 0:
                with contextlib.suppress(psutil.Error):
                    tree = [self._me, *self._me.children(recursive=True)]
            total = 0
            for proc in tree:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / (1 << 20)


def _usage(start_wall: float, start_cpu: float, tree: TreeMemory | None = None, **extra) -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": time.perf_counter() - start_wall,
        "cpu_s": time.process_time() - start_cpu + children.ru_utime + children.ru_stime,
        "peak_rss_mib": max(own, tree.stop() if tree else 0.0),
        "main_rss_mib": own,
        **extra,
    }


def child_floor(p: dict) -> dict:
    from benchmarks.baselines import io_floor, raw_copy

    fn = raw_copy if p["mode"] == "raw" else io_floor
    tmp = _scratch("floor")
    t, c = time.perf_counter(), time.process_time()
    rows = fn(Path(p["source"]), tmp / "out.parquet")
    return _usage(t, c, records=rows)


def child_files(p: dict) -> dict:
    from benchmarks.baselines import small_files

    tmp = _scratch("files")  # on the file system the pipeline's lake lives on
    t, c = time.perf_counter(), time.process_time()
    files = small_files(tmp, p["count"], p["size"])
    return _usage(t, c, files=files, size=p["size"])


def child_reference(p: dict) -> dict:
    from benchmarks.baselines import per_record_reference

    tmp = _scratch("ref")
    t, c = time.perf_counter(), time.process_time()
    rows = per_record_reference(Path(p["source"]), tmp / "out.parquet", PARTITION, dt.timedelta(days=1))
    return _usage(t, c, records=rows)


def _scratch(name: str) -> Path:
    """A fresh folder for one step inside the benchmark's scratch root, left for the parent to remove."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=os.environ.get(SCRATCH_ENV)))


def _lake_with(source: Path) -> Path:
    lake = _scratch("lake")
    raw = lake / "raw" / PARTITION.isoformat()
    raw.mkdir(parents=True)
    try:
        os.link(source, raw / source.name)
    except OSError:
        shutil.copyfile(source, raw / source.name)
    return lake


def _phase_timers() -> dict:
    """Wall time inside the run's main steps, by wrapping them (names missing after a refactor are skipped)."""
    import functools

    from geospatial_pipeline.lake import publish

    spent: dict[str, float] = {}
    lock = threading.Lock()  # the late objects are written on two threads

    def timed(name: str, label: str | Callable[[], str]) -> None:
        fn = getattr(publish, name, None)
        if fn is None:
            return
        label_now = label if callable(label) else lambda: label

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _add(label_now(), time.perf_counter() - t)

        setattr(publish, name, wrapper)

    def _add(label: str, seconds: float) -> None:
        with lock:
            spent[label] = spent.get(label, 0.0) + seconds

    timed("classify_inputs", "read+validate")

    # The late-object lane runs beside the GeoParquet lane, which writes the last row groups with it when done.
    def lane() -> str:
        return "late-object lane" if threading.current_thread().name == "late-objects" else "shared"

    timed("_write_late_rows", lane)
    timed("write_late_objects", "of which late objects")
    timed("write_grouped_geoparquet", "GeoParquet")
    timed("_build_late_batches", "late batches")  # after the GeoParquet, on its lane
    return spent


def child_pipeline(p: dict) -> dict:
    from geospatial_pipeline.lake.publish import run_partition
    from geospatial_pipeline.lake.store import LocalStore
    from geospatial_pipeline.settings import load_settings

    source = Path(p["source"])
    lake = _lake_with(source)
    settings = load_settings(CONFIG, local_lake_path=lake)
    phases = _phase_timers()
    tree = TreeMemory()
    t, c = time.perf_counter(), time.process_time()
    report = run_partition(
        LocalStore(lake),
        PARTITION,
        settings.rules(),
        target_crs=settings.target_crs,
        limits=settings.limits(),
        now=NOW,
    )
    result = _usage(t, c, tree, records=report.counts["input_records"], counts=report.counts, phases=phases)
    phases["publish"] = result["wall_s"] - phases.get("read+validate", 0.0)
    result["late_objects"] = report.outputs["late_objects"]
    if p.get("sample"):
        _save_late_sample(lake, Path(p["sample"]), int(p["sample_rows"]))
    return result


def _save_late_sample(lake: Path, out: Path, rows: int) -> None:
    """Late rows as write_late_objects takes them, for the S3 step (GeoJSON back from the WKB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    batches = sorted((lake / "late_data" / "_batches").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(b) for b in batches]).slice(0, rows)
    geojson = shapely.to_geojson(shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False)))
    pq.write_table(table.append_column("geometry_geojson", pa.array(geojson, pa.string())), out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_s3(p: dict) -> dict:
    """Late objects PUT to moto's server on 127.0.0.1 (its own process), one at a time and pooled."""
    import psutil
    import pyarrow.parquet as pq
    from dagster_aws.s3 import S3Resource

    from geospatial_pipeline.defs.resources import LakeResource
    from geospatial_pipeline.lake.store import S3Store
    from geospatial_pipeline.lake.writers import write_late_objects

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from moto.server import ThreadedMotoServer; "
            f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}); s.start(); "
            "print('ready', flush=True); sys.stdin.read(); s.stop()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in server.stdout:  # the server may log before it is up
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("moto server did not start")
        client = LakeResource(
            s3=S3Resource(
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                max_attempts=8,
            ),
            retry_mode="standard",
            max_pool_connections=p["concurrency"],
        ).s3_client()
        client.create_bucket(Bucket="bench")
        rows = pq.read_table(p["sample"])
        runs: dict[str, list[dict]] = {"sequential": [], "pooled": []}
        moto = psutil.Process(server.pid)
        # Alternating rounds, so a slow spell of the machine hits both modes alike; medians are reported.
        for round_no in range(p.get("rounds", 3)):
            for label, concurrency in (("sequential", 1), ("pooled", p["concurrency"])):
                store = S3Store(client, "bench", prefix=f"{label}-{round_no}")
                t, c, s = time.perf_counter(), time.process_time(), sum(moto.cpu_times()[:2])
                written = len(write_late_objects(store, rows, concurrency))
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                server_cpu = sum(moto.cpu_times()[:2]) - s
                runs[label].append(
                    {
                        "objects": written,
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "server_cpu_s": server_cpu,
                        "concurrency": concurrency,
                    }
                )
        return {label: {**_median_run(r), "wall_runs": [x["wall_s"] for x in r]} for label, r in runs.items()}
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def child_dagster(p: dict) -> dict:
    """The daily partition materialized through Dagster end to end, on a real (ephemeral) instance."""
    t0, c0 = time.perf_counter(), time.process_time()
    from dagster import DagsterInstance, materialize

    from geospatial_pipeline.definitions import build_definitions
    from geospatial_pipeline.settings import load_settings

    lake = _lake_with(Path(p["source"]))
    defs = build_definitions(load_settings(CONFIG, local_lake_path=lake))
    with DagsterInstance.ephemeral() as instance:
        t = time.perf_counter()
        result = materialize(
            list(defs.assets),
            partition_key=PARTITION.isoformat(),
            instance=instance,
            resources=defs.resources,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        materialize_s = time.perf_counter() - t
    assert result.success
    return _usage(t0, c0, records=p["records"], materialize_s=materialize_s)


CHILDREN = {
    "floor": child_floor,
    "files": child_files,
    "reference": child_reference,
    "pipeline": child_pipeline,
    "s3": child_s3,
    "dagster": child_dagster,
}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]


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
            **_median_run(r),
            "wall_runs": [x["wall_s"] for x in r],
            "peak_rss_mib": max(x["peak_rss_mib"] for x in r),
        }
        for name, r in runs.items()
    }


def run_child(kind: str, **params) -> dict:
    os.sync()  # the previous steps' files on disk first: no step pays for another's writeback
    env = dict(os.environ, PYTHONPATH=str(REPO), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--child", kind, "--params", json.dumps(params)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step {kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the parent: generate, measure, tabulate -----------------------------------------------------------


def measure(records: int, args: argparse.Namespace, *, baselines: bool, extras: bool) -> dict:
    source = generate(batch_path(args.cache, records, args.seed), records, args.seed)
    out: dict = {"records": records, "input_mib": source.stat().st_size / (1 << 20)}
    say = (lambda msg: print(f"  [{records:,}] {msg}", file=sys.stderr, flush=True)) if args.verbose else None
    sample = args.cache / f"late-sample-{records}-s{args.seed}.parquet"
    pipeline = {"source": str(source), "sample": str(sample) if extras else "", "sample_rows": args.s3_objects // 2}
    steps = {"pipeline": ("pipeline", pipeline)}
    if baselines:
        steps = {
            "floor": ("floor", {"source": str(source), "mode": "json"}),
            "raw": ("floor", {"source": str(source), "mode": "raw"}),
            **steps,
        }
    say and say(f"{' / '.join(steps)}, {args.repeat if baselines else 1} round(s)")
    out.update(run_rounds(steps, args.repeat if baselines else 1))
    if baselines:
        say and say("small-file floor")
        out["files"] = run_child("files", count=min(records // 5, SMALL_FILES), size=SMALL_FILE_BYTES)
        if not args.skip_reference:
            say and say("per-record reference")
            out["reference"] = run_child("reference", source=str(source))
    if extras and not args.skip_s3:
        say and say("S3 late objects")
        out["s3"] = run_child("s3", sample=str(sample), concurrency=args.s3_concurrency, rounds=args.s3_rounds)
    if extras and not args.skip_dagster:
        dagster_source = generate(
            batch_path(args.cache, args.dagster_records, args.seed), args.dagster_records, args.seed
        )
        say and say("Dagster end to end")
        out["dagster"] = run_child("dagster", source=str(dagster_source), records=args.dagster_records)
    return out


def _row(name: str, records: int, r: dict, floor: dict | None = None, reference: dict | None = None) -> str:
    wall = r["wall_s"]
    vs_floor = f"{wall / floor['wall_s']:.2f}x" if floor else ""
    vs_ref = f"{reference['wall_s'] / wall:.1f}x faster" if reference else ""
    return (
        f"| {name} | {records:,} | {wall:.2f} | {records / wall:,.0f} | {r['cpu_s']:.1f} | "
        f"{r['peak_rss_mib']:,.0f} | {vs_floor} | {vs_ref} |"
    )


def table(results: list[dict]) -> str:
    lines = [
        "| run | records | wall s | records/s | CPU s | peak RSS MiB | x I/O floor | vs per-record |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        n = res["records"]
        floor, ref = res.get("floor"), res.get("reference")
        if floor:
            lines.append(_row("I/O floor: pyarrow JSON → Parquet", n, floor))
            lines.append(_row("raw copy: lines as text → Parquet", n, res["raw"], floor))
        if ref:
            lines.append(_row("per-record reference (seed loop)", n, ref, floor))
        lines.append(_row("pipeline (local lake)", n, res["pipeline"], floor, ref))
    notes = []
    for res in results:
        pipe, n = res["pipeline"], res["records"]
        ph = {k: f"{v:.1f} s" for k, v in pipe.get("phases", {}).items()}
        phases = (
            f"read+validate {ph.get('read+validate')}, then {ph.get('publish')} to the manifest: the late-object "
            f"lane {ph.get('late-object lane')} beside dedupe, the GeoParquet ({ph.get('GeoParquet')}) and the late "
            f"batches ({ph.get('late batches')}), whose thread then wrote late objects too for {ph.get('shared')} "
            f"(the objects took {ph.get('of which late objects')} summed over both threads)"
        )
        notes.append(
            f"- {n:,} records ({res['input_mib']:,.0f} MiB): {pipe['counts']['late']:,} late, "
            f"{pipe['counts']['rejected']:,} rejected, {pipe['late_objects']:,} late objects; {phases}"
        )
        if "files" in res:
            files = res["files"]
            per_file = files["wall_s"] / files["files"]
            notes.append(
                f"  small-file floor on this filesystem (files made in a staging folder renamed into place, "
                f"{files['files']:,} files of "
                f"{files['size']:,} bytes): {per_file * 1e6:,.0f} µs/file, so the {pipe['late_objects']:,} late "
                f"objects cost at least {per_file * pipe['late_objects']:.1f} s here"
            )
        if len(pipe.get("wall_runs", [])) > 1:
            runs = {"pipeline": pipe, "I/O floor": res.get("floor")}
            walls = "; ".join(
                f"{name} " + ", ".join(f"{w:.1f}" for w in r["wall_runs"]) + " s"
                for name, r in runs.items()
                if r and r.get("wall_runs")
            )
            notes.append(f"  median of {len(pipe['wall_runs'])} alternating rounds ({walls})")
        if "s3" in res:
            s3 = res["s3"]
            seq, pooled = s3["sequential"], s3["pooled"]
            rate = {k: v["objects"] / v["wall_s"] for k, v in s3.items()}
            cpu_ms = {k: 1000 * v["cpu_s"] / v["objects"] for k, v in s3.items()}
            server_ms = {k: 1000 * v["server_cpu_s"] / v["objects"] for k, v in s3.items()}
            total = pipe["late_objects"]
            # moto's server is one Python process: however many requests are in flight, it serves about
            # 1 / (its CPU per object) of them a second, the ceiling of the pooled rate here.
            ceiling = 1000 / server_ms["pooled"]
            notes.append(
                f"- S3 late objects (moto server on 127.0.0.1, {seq['objects']:,} objects, median of "
                f"{len(seq.get('wall_runs', [1]))} alternating rounds): sequential "
                f"{rate['sequential']:,.0f}/s, pooled ({pooled['concurrency']} threads) {rate['pooled']:,.0f}/s = "
                f"{rate['pooled'] / rate['sequential']:.2f}x; client CPU {cpu_ms['sequential']:.2f} ms/object "
                f"sequential, {cpu_ms['pooled']:.2f} ms/object pooled; moto's server CPU "
                f"{server_ms['pooled']:.2f} ms/object (one process: it caps the pooled rate near {ceiling:,.0f}/s); "
                f"all {total:,} objects of this batch ≈ "
                f"{total * cpu_ms['pooled'] / 1000:.1f} s of client CPU, "
                f"{total / rate['pooled']:.1f} s at the pooled rate"
            )
        if "dagster" in res:
            d = res["dagster"]
            notes.append(
                f"- Dagster end to end, {d['records']:,} fields, ephemeral instance: "
                f"materialize {d['materialize_s']:.1f} s "
                f"({d['wall_s']:.1f} s with imports and definitions), peak RSS {d['peak_rss_mib']:,.0f} MiB"
            )
    memory = [r for r in results if r.get("memory_only")]
    if memory and len(results) > 1:
        smaller = [r for r in results if r["records"] < memory[0]["records"] and not r.get("memory_only")]
        base = max(smaller, key=lambda r: r["records"])
        ratio = memory[0]["pipeline"]["peak_rss_mib"] / base["pipeline"]["peak_rss_mib"]
        notes.append(
            f"- peak RSS {memory[0]['records']:,} vs {base['records']:,}: "
            f"{memory[0]['pipeline']['peak_rss_mib']:,.0f} / {base['pipeline']['peak_rss_mib']:,.0f} MiB = {ratio:.2f}x"
        )
    return "\n".join(lines + [""] + notes)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the partition run; prints a Markdown table.")
    parser.add_argument("--records", type=int, default=100_000, help="batch size of the quick run")
    parser.add_argument("--large", action="store_true", help="also 1M records (with baselines) and 4M (memory)")
    parser.add_argument("--large-records", type=int, default=1_000_000)
    parser.add_argument("--memory-records", type=int, default=4_000_000)
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
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        # Outside the timed part: start with no one else's dirty pages, and leave none to slow the next step.
        os.sync()
        result = CHILDREN[args.child](json.loads(args.params))
        os.sync()
        print(json.dumps(result))
        return 0

    if args.repeat is None:
        args.repeat = 3 if args.large else 1
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:  # every step's files, removed at the end
        os.environ[SCRATCH_ENV] = scratch
        results = [measure(args.records, args, baselines=True, extras=True)]
        if args.large:
            results.append(measure(args.large_records, args, baselines=True, extras=False))
            memory = measure(args.memory_records, args, baselines=False, extras=False)
            memory["memory_only"] = True
            results.append(memory)
    print(f"Machine: {machine()}")
    print(
        f"Batch: seeded GeoJSONSeq (seed {args.seed}), partition {PARTITION}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print(table(results))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
