"""A seeded GeoJSONSeq batch shaped like a national field-boundary delivery.

Polygons of 20-60 vertices around Central Europe, about 10% late (half for the previous day, half after
the window), 2% invalid (bow-ties), 10% in UTM zone 33N, 1% re-deliveries of a field in the same batch.
Records are built in blocks, each from its own RNG stream (seed, block), so a file is byte-identical
whatever the number of worker processes, and 1M records take seconds rather than minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pyproj import Transformer

PARTITION = dt.date(2025, 3, 3)
# `now` for the runs: two days after the partition, so every late arrival is in the past.
NOW = dt.datetime(2025, 3, 5, 12, tzinfo=dt.UTC)
BLOCK = 20_000
LATE_SHARE = 0.10
INVALID_SHARE = 0.02
UTM_SHARE = 0.10
DUPLICATE_SHARE = 0.01
UTM_CRS = "EPSG:32633"
CROPS = ["wheat", "barley", "maize", "rapeseed", "sugar_beet", "potato", "grassland", "rye", "oats", "sunflower"]
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _block(args: tuple[int, int, int, int]) -> bytes:
    """Records [start, start + count) as GeoJSONSeq bytes; a pure function of its arguments."""
    seed, index, start, count = args
    rng = np.random.default_rng([seed, index])
    k = rng.integers(20, 61, count)  # distinct vertices per ring
    utm = rng.random(count) < UTM_SHARE
    lon0 = np.where(utm, rng.uniform(12.5, 17.5, count), rng.uniform(5.0, 24.0, count))
    lat0 = rng.uniform(45.5, 54.5, count)
    radius = rng.uniform(80.0, 400.0, count)

    # Star-shaped rings: angles increase around the centre, so a ring is simple unless we break it.
    owner = np.repeat(np.arange(count), k)
    offsets = np.concatenate([[0], np.cumsum(k)])
    j = np.arange(len(owner)) - offsets[owner]
    angle = 2 * np.pi * (j + 0.8 * rng.random(len(owner))) / k[owner]
    r = radius[owner] * rng.uniform(0.75, 1.0, len(owner))
    lat = lat0[owner] + r * np.sin(angle) / 111_132.0
    lon = lon0[owner] + r * np.cos(angle) / (111_320.0 * np.cos(np.radians(lat0[owner])))
    xy = np.column_stack([lon, lat])
    invalid = rng.random(count) < INVALID_SHARE
    for i in np.flatnonzero(invalid):  # bow-tie: swap two vertices on opposite sides
        a, b = offsets[i], offsets[i] + k[i] // 2
        xy[[a, b]] = xy[[b, a]]
    if utm.any():
        sel = utm[owner]
        tr = Transformer.from_crs("EPSG:4326", UTM_CRS, always_xy=True)
        e, n = tr.transform(xy[sel, 0], xy[sel, 1])
        xy[sel] = np.column_stack([e, n])
    xy = np.where(utm[owner][:, None], np.round(xy, 2), np.round(xy, 7))

    day = np.datetime64(PARTITION, "s")
    kind = rng.random(count)
    late_prev = kind < LATE_SHARE / 2
    late_after = (kind >= LATE_SHARE / 2) & (kind < LATE_SHARE)
    seconds = rng.integers(0, 86_400, count)
    arrival = day + seconds.astype("timedelta64[s]")
    arrival[late_after] = (
        day + np.timedelta64(86_400, "s") + rng.integers(60, 72_000, int(late_after.sum())).astype("timedelta64[s]")
    )
    arrival_text = np.datetime_as_string(arrival, unit="s")
    today = PARTITION.isoformat()
    yesterday = (PARTITION - dt.timedelta(days=1)).isoformat()
    crop = rng.integers(0, len(CROPS), count)
    farm = rng.integers(0, 50_000, count)
    organic = rng.random(count) < 0.12
    dup = rng.random(count) < DUPLICATE_SHARE
    dup_of = np.maximum(0, np.arange(count) - rng.integers(1, 500, count))

    out = []
    for i in range(count):
        number = start + (dup_of[i] if dup[i] and dup_of[i] < i else i)
        ring = np.concatenate([xy[offsets[i] : offsets[i + 1]], xy[offsets[i] : offsets[i] + 1]])
        props = {
            "field_id": f"FLD-{number:09d}",
            "arrival_time": arrival_text[i] + "Z",
            "processing_date": yesterday if late_prev[i] else today,
        }
        if utm[i]:
            props["crs"] = UTM_CRS
        props["data"] = {
            "crop": CROPS[crop[i]],
            "farm_id": f"FARM-{farm[i]:05d}",
            "season": 2025,
            "organic": bool(organic[i]),
        }
        out.append(
            b'{"type":"Feature","geometry":{"type":"Polygon","coordinates":['
            + orjson.dumps(ring, option=_NUMPY)
            + b']},"properties":'
            + orjson.dumps(props)
            + b"}\n"
        )
    return b"".join(out)


def write_once(path: Path, blocks: Callable[[], Iterable[bytes]]) -> Path:
    """`path` written from `blocks()` through a .part file renamed into place, unless it is already there:
    an interrupted write leaves nothing that looks finished."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("wb") as f:
            for block in blocks():
                f.write(block)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def made_in_processes(make: Callable[[Any], bytes], jobs: list[Any], workers: int | None) -> Iterator[bytes]:
    """make(job) for every job, in order, on spawned processes (by default up to two) when there are several."""
    workers = workers or min(2, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(workers) as pool:
            yield from pool.imap(make, jobs)
    else:
        yield from map(make, jobs)


def generate(path: Path, records: int, seed: int = 42, workers: int | None = None) -> Path:
    """Write `records` records to `path` (atomically) unless the file is already there."""
    jobs = [(seed, b, s, min(BLOCK, records - s)) for b, s in enumerate(range(0, records, BLOCK))]
    return write_once(path, lambda: made_in_processes(_block, jobs, workers))


def batch_path(cache: Path, records: int, seed: int) -> Path:
    return Path(cache) / f"fields-{records}-s{seed}.geojsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    print(generate(batch_path(args.cache, args.records, args.seed), args.records, args.seed))


if __name__ == "__main__":
    main()
