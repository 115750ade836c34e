"""One measured step per process: `python -m benchmarks.steps KIND PARAMS_JSON` prints one JSON line.

Every step runs in its own process, so its peak RSS is its own (its process tree's, workers included) and
it inherits no other step's heap. Each starts and ends with a sync, outside the timed part, so no step pays
for writing back another's files. The big files a step wrote (Parquet outputs) go right after it is
measured; its many small files stay until the whole benchmark ends (see run.py on why deleting them early
would slow every later step).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.generate import NOW, PARTITION

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "fixtures" / "config.yaml"
SCRATCH_ENV = "BENCH_SCRATCH"  # the parent's scratch root, where each step makes its folder


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


def usage(start_wall: float, start_cpu: float, tree: TreeMemory | None = None, **extra) -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": time.perf_counter() - start_wall,
        "cpu_s": time.process_time() - start_cpu + children.ru_utime + children.ru_stime,
        "peak_rss_mib": max(own, tree.stop() if tree else 0.0),
        "main_rss_mib": own,
        **extra,
    }


def scratch(name: str) -> Path:
    """A fresh folder for one step inside the benchmark's scratch root, left for the parent to remove."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=os.environ.get(SCRATCH_ENV)))


def _drop(*paths: Path) -> None:
    """Big outputs, once measured (a handful of files: freeing them costs the next steps nothing)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def child_floor(p: dict) -> dict:
    """pyarrow JSON → Parquet over the batch's floor files (mode json), or the lines as text (mode raw)."""
    from benchmarks.baselines import io_floor, raw_copy

    tmp = scratch("floor")
    sources = [Path(s) for s in p["sources"]]
    t, c = time.perf_counter(), time.process_time()
    if p["mode"] == "raw":
        rows = sum(raw_copy(s, tmp / f"{n}.parquet") for n, s in enumerate(sources))
    else:
        rows = io_floor(sources, tmp)
    result = usage(t, c, records=rows, files=len(sources))
    _drop(tmp)
    return result


def child_files(p: dict) -> dict:
    from benchmarks.baselines import small_files

    tmp = scratch("files")  # on the file system the pipeline's lake lives on
    sizes = {int(size): int(count) for size, count in p["sizes"].items()}
    t, c = time.perf_counter(), time.process_time()
    files = small_files(tmp, sizes)
    return usage(t, c, files=files, sizes=sizes)


def child_reference(p: dict) -> dict:
    from benchmarks.baselines import per_record_reference

    tmp = scratch("ref")
    t, c = time.perf_counter(), time.process_time()
    rows = per_record_reference(Path(p["source"]), tmp / "out.parquet", PARTITION, dt.timedelta(days=1))
    result = usage(t, c, records=rows)
    _drop(tmp)
    return result


def lake_with(source: Path) -> Path:
    lake = scratch("lake")
    raw = lake / "raw" / PARTITION.isoformat()
    raw.mkdir(parents=True)
    try:
        os.link(source, raw / source.name)
    except OSError:
        shutil.copyfile(source, raw / source.name)
    return lake


def _phase_timers() -> dict:
    """Wall time inside the run's main steps, by wrapping them where the run looks them up. A name that is
    gone after a refactor fails the step: a phase silently missing from the report would hide where the
    time went."""
    import functools

    from geospatial_pipeline.lake import late_objects, publish

    spent: dict[str, float] = {}
    lock = threading.Lock()  # the late objects are written on two threads

    def timed(module, name: str, label) -> None:
        fn = getattr(module, name)  # AttributeError: the run no longer calls it there
        label_now = label if callable(label) else lambda: label

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[label_now()] = spent.get(label_now(), 0.0) + time.perf_counter() - t

        setattr(module, name, wrapper)

    timed(publish, "classify_inputs", "read+validate")

    # The late-object lane runs beside the GeoParquet lane, which writes the last row groups with it when done.
    def lane() -> str:
        return "late-object lane" if threading.current_thread().name == "late-objects" else "shared"

    timed(late_objects, "_write_late_rows", lane)
    timed(late_objects, "write_late_objects", "of which late objects")
    timed(publish, "write_grouped_geoparquet", "GeoParquet")
    timed(publish, "build_late_batches", "late batches")  # after the GeoParquet, on its lane
    return spent


def late_object_sizes(lake: Path) -> dict[str, list[int]]:
    """{suffix: [count, bytes]} of the late objects the run wrote (every date folder but the batches')."""
    sizes: dict[str, list[int]] = {}
    for folder in (lake / "late_data").iterdir():
        if folder.name.startswith("_") or not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                entry_sizes = sizes.setdefault(Path(entry.name).suffix, [0, 0])
                entry_sizes[0] += 1
                entry_sizes[1] += entry.stat().st_size
    return sizes


def child_pipeline(p: dict) -> dict:
    from geospatial_pipeline.lake.local_store import LocalStore
    from geospatial_pipeline.lake.publish import run_partition
    from geospatial_pipeline.settings import load_settings

    source = Path(p["source"])
    lake = lake_with(source)
    settings = load_settings(CONFIG, local_lake_path=lake, **p.get("settings", {}))
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
    result = usage(t, c, tree, records=report.counts["input_records"], counts=report.counts, phases=phases)
    phases["publish"] = result["wall_s"] - phases.get("read+validate", 0.0)
    result["reasons"] = report.reasons
    result["late_objects"] = report.outputs["late_objects"]
    result["late_object_sizes"] = late_object_sizes(lake)
    if p.get("sample"):
        _save_late_sample(lake, Path(p["sample"]), int(p["sample_rows"]))
    _drop(lake / "fields", lake / "late_data" / "_batches", lake / "rejected", lake / "raw")
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


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]


def child_prepare(p: dict) -> dict:
    """Not measured: the batch generated (once) and, for the floor, split for pyarrow (once). Done here, not
    in the parent, because Linux hands a process's peak RSS on across fork and exec: a parent grown by this
    work would show up as every later step's own peak."""
    from benchmarks.batches import BATCHES
    from benchmarks.floor_split import split_for_pyarrow

    batch = BATCHES[p["batch"]]
    options = {"parcels": Path(p["parcels"])} if p.get("parcels") else {}
    source = batch.source(Path(p["cache"]), p["records"], p["seed"], **options)
    split = split_for_pyarrow(source) if p.get("split") else None
    return {"source": str(source), "split": split and {k: split[k] for k in ("files", "records", "left_out")}}


def children() -> dict:
    from benchmarks.service_steps import child_dagster, child_s3

    return {
        "prepare": child_prepare,
        "floor": child_floor,
        "files": child_files,
        "reference": child_reference,
        "pipeline": child_pipeline,
        "s3": child_s3,
        "dagster": child_dagster,
    }


def main(argv: list[str]) -> int:
    kind, params = argv
    os.sync()  # outside the timed part: start with no one else's dirty pages, leave none for the next step
    result = children()[kind](json.loads(params))
    os.sync()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
