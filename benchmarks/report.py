"""The benchmark's printed report: one table of every batch's floor, baselines and pipeline runs, the
notes that explain each figure, and a table of the issue's targets, met or not, per batch."""

from __future__ import annotations

from benchmarks.batches import BATCHES
from benchmarks.floor_split import describe

TARGET_SIZE = 1_000_000
MAX_FLOOR_RATIO = 2.0
MIN_SPEEDUP = 5.0
MAX_RSS_MIB = 1.5 * 1024
MAX_RSS_GROWTH = 1.10  # "flat": the larger batch may take at most this much more memory

HEADER = [
    "| batch | run | records | wall s | records/s | CPU s | peak RSS MiB | x floor | vs per-record | RSS vs smaller |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def floor_of(res: dict) -> dict:
    """The batch's floor: pyarrow JSON → Parquet (median run) plus the small files, as one step."""
    json_floor, files = res["floor"], res["files"]
    return {
        "wall_s": json_floor["wall_s"] + files["wall_s"],
        "cpu_s": json_floor["cpu_s"] + files["cpu_s"],
        "peak_rss_mib": max(json_floor["peak_rss_mib"], files["peak_rss_mib"]),
    }


def _row(res: dict, name: str, step: dict, *, floor=None, reference=None, smaller=None) -> str:
    n, wall = res["records"], step["wall_s"]
    cells = [
        BATCHES[res["batch"]].title,
        name,
        f"{n:,}",
        f"{wall:.2f}",
        f"{n / wall:,.0f}" if wall > 0 else "",
        f"{step['cpu_s']:.1f}",
        f"{step['peak_rss_mib']:,.0f}",
        f"{wall / floor['wall_s']:.2f}x" if floor else "",
        f"{reference['wall_s'] / wall:.2f}x faster" if reference else "",
        f"{step['peak_rss_mib'] / smaller['pipeline']['peak_rss_mib']:.2f}x" if smaller else "",
    ]
    return "| " + " | ".join(cells) + " |"


def _smaller(res: dict, results: list[dict]) -> dict | None:
    """The same batch's largest measured run below this one, if this run is the memory-only one."""
    if not res.get("memory_only"):
        return None
    below = [r for r in results if r["batch"] == res["batch"] and r["records"] < res["records"]]
    return max(below, key=lambda r: r["records"]) if below else None


def table(results: list[dict]) -> str:
    lines = list(HEADER)
    for name in BATCHES:
        for res in sorted((r for r in results if r["batch"] == name), key=lambda r: r["records"]):
            ref = res.get("reference")
            if "floor" in res:
                floor = floor_of(res)
                files = res["files"]
                parts = len(res["split"]["files"])
                json_name = f"floor: pyarrow JSON → Parquet ({parts} file{'s' if parts > 1 else ''})"
                lines.append(_row(res, json_name, res["floor"]))
                lines.append(_row(res, f"floor: {files['files']:,} small files", files))
                lines.append(_row(res, "floor: the two together", floor))
                lines.append(_row(res, "raw copy: lines as text → Parquet", res["raw"], floor=floor))
                if ref:
                    lines.append(_row(res, "per-record reference (seed loop)", ref, floor=floor))
                lines.append(_row(res, "pipeline (local lake)", res["pipeline"], floor=floor, reference=ref))
            else:
                smaller = _smaller(res, results)
                lines.append(_row(res, "pipeline (local lake)", res["pipeline"], smaller=smaller))
    return "\n".join(lines)


def notes(results: list[dict]) -> str:
    out = []
    for res in results:
        out.extend(_batch_notes(res))
        if "s3" in res:
            out.append(_s3_note(res))
        if "dagster" in res:
            d = res["dagster"]
            out.append(
                f"- Dagster end to end ({BATCHES[res['batch']].title} batch), {d['records']:,} fields, ephemeral "
                f"instance: materialize {d['materialize_s']:.1f} s ({d['wall_s']:.1f} s with imports and "
                f"definitions), peak RSS {d['peak_rss_mib']:,.0f} MiB"
            )
    return "\n".join(out)


def _batch_notes(res: dict) -> list[str]:
    pipe, n = res["pipeline"], res["records"]
    counts = pipe["counts"]
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(pipe.get("reasons", {}).items(), key=lambda kv: -kv[1]))
    ph = {k: f"{v:.1f} s" for k, v in pipe.get("phases", {}).items()}
    lines = [
        f"- {BATCHES[res['batch']].title}, {n:,} records ({res['input_mib']:,.0f} MiB): {counts['late']:,} late, "
        f"{counts['rejected']:,} rejected ({reasons or 'none'}), {counts['superseded']:,} superseded, "
        f"{pipe['late_objects']:,} late objects; read+validate {ph.get('read+validate')}, then {ph.get('publish')} "
        f"to the manifest (late-object lane {ph.get('late-object lane')}, GeoParquet {ph.get('GeoParquet')}, "
        f"late batches {ph.get('late batches')})"
    ]
    if "split" in res:
        files = res["files"]
        per_file = files["wall_s"] / files["files"] * 1e6 if files["files"] else 0.0
        sizes = ", ".join(f"{count:,} of {int(size):,} B" for size, count in files["sizes"].items())
        lines.append(
            f"  floor: pyarrow.json read {describe(res['split'])}; small files made in a staging folder "
            f"renamed into place, 2 per late field ({sizes or 'none'}): {per_file:,.0f} µs/file"
        )
    walls = [(k, res[k]) for k in ("pipeline", "floor", "raw") if len(res.get(k, {}).get("wall_runs", [])) > 1]
    if walls:
        runs = "; ".join(f"{k} " + ", ".join(f"{w:.1f}" for w in r["wall_runs"]) + " s" for k, r in walls)
        lines.append(f"  median of {len(walls[0][1]['wall_runs'])} alternating rounds ({runs})")
    return lines


def _s3_note(res: dict) -> str:
    s3, total = res["s3"], res["pipeline"]["late_objects"]
    seq, pooled = s3["sequential"], s3["pooled"]
    rate = {k: v["objects"] / v["wall_s"] for k, v in s3.items()}
    cpu_ms = {k: 1000 * v["cpu_s"] / v["objects"] for k, v in s3.items()}
    server_ms = {k: 1000 * v["server_cpu_s"] / v["objects"] for k, v in s3.items()}
    # moto's server is one Python process: however many requests are in flight, it serves about
    # 1 / (its CPU per object) of them a second, the ceiling of the pooled rate here.
    ceiling = 1000 / server_ms["pooled"]
    return (
        f"- S3 late objects ({BATCHES[res['batch']].title} batch; moto server on 127.0.0.1, {seq['objects']:,} "
        f"objects, median of {len(seq.get('wall_runs', [1]))} alternating rounds): sequential "
        f"{rate['sequential']:,.0f}/s, pooled ({pooled['concurrency']} threads) {rate['pooled']:,.0f}/s = "
        f"{rate['pooled'] / rate['sequential']:.2f}x; client CPU {cpu_ms['sequential']:.2f} ms/object "
        f"sequential, {cpu_ms['pooled']:.2f} ms/object pooled; moto's server CPU "
        f"{server_ms['pooled']:.2f} ms/object (one process: it caps the pooled rate near {ceiling:,.0f}/s); "
        f"all {total:,} objects of this batch ≈ {total * cpu_ms['pooled'] / 1000:.1f} s of client CPU, "
        f"{total / rate['pooled']:.1f} s at the pooled rate"
    )


def _verdict(ok: bool | None, figure: str) -> str:
    if ok is None:
        return f"not measured{f' ({figure})' if figure else ''}"
    return f"{'met' if ok else 'NOT met'} ({figure})"


def _targets_of(res: dict, memory: dict | None) -> dict[str, tuple[bool | None, str]]:
    pipe, ref = res["pipeline"], res.get("reference")
    ratio = pipe["wall_s"] / floor_of(res)["wall_s"]
    peak = max(pipe["peak_rss_mib"], memory["pipeline"]["peak_rss_mib"] if memory else 0.0)
    growth = memory["pipeline"]["peak_rss_mib"] / pipe["peak_rss_mib"] if memory else None
    return {
        "floor": (ratio <= MAX_FLOOR_RATIO, f"{ratio:.2f}x"),
        "speedup": (ref["wall_s"] / pipe["wall_s"] >= MIN_SPEEDUP, f"{ref['wall_s'] / pipe['wall_s']:.2f}x")
        if ref
        else (None, "reference skipped"),
        "rss": (peak <= MAX_RSS_MIB, f"{peak:,.0f} MiB"),
        "flat": (growth <= MAX_RSS_GROWTH, f"{growth:.2f}x") if growth else (None, "needs --large"),
    }


def targets(results: list[dict], skipped: dict[str, str]) -> str:
    """Each target per batch, and whether it holds on every batch (none counts on one batch only)."""
    measured = [r for r in results if "floor" in r]
    if not measured:
        return ""
    size = max(r["records"] for r in measured)
    per_batch: dict[str, dict] = {}
    for res in (r for r in measured if r["records"] == size):
        memory = [r for r in results if r["batch"] == res["batch"] and r.get("memory_only")]
        per_batch[res["batch"]] = _targets_of(res, max(memory, key=lambda r: r["records"]) if memory else None)
    memory_size = max((r["records"] for r in results if r.get("memory_only")), default=None)
    rows = {
        "floor": f"pipeline at most {MAX_FLOOR_RATIO:.1f}x its batch's floor",
        "speedup": f"pipeline at least {MIN_SPEEDUP:.0f}x faster than the per-record loop",
        "rss": f"peak RSS at most {MAX_RSS_MIB / 1024:.1f} GiB"
        + (f" ({size:,} and {memory_size:,})" if memory_size else ""),
        "flat": f"peak RSS flat to {memory_size:,} (at most {MAX_RSS_GROWTH:.2f}x the {size:,} run)"
        if memory_size
        else f"peak RSS flat to a batch 4x larger (at most {MAX_RSS_GROWTH:.2f}x)",
    }
    scope = "" if size == TARGET_SIZE else f" (the targets are set at {TARGET_SIZE:,}: indicative only)"
    lines = [
        f"Targets at {size:,} records{scope}:",
        "",
        "| target | " + " | ".join(BATCHES[n].title for n in BATCHES) + " | every batch |",
        "|---|" + "---|" * len(BATCHES) + "---|",
    ]
    for key, label in rows.items():
        cells, flags = [], []
        for name in BATCHES:
            if name in per_batch:
                ok, figure = per_batch[name][key]
                cells.append(_verdict(ok, figure))
                flags.append(ok)
            else:
                cells.append("skipped" if name in skipped else "not run")
                flags.append(None)
        if any(f is False for f in flags):
            overall = "NOT met"
        elif all(f is True for f in flags):
            overall = "met"
        else:
            overall = "open (not measured on every batch)"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {overall} |")
    return "\n".join(lines)
