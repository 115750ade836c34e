"""Real lakes for the export and reader tests, written by the pipeline itself (run_partition, the code the
Dagster asset runs): the fixture days, a small grid of fields that renders well, generated days from the
benchmark's seeded generator, and the real parcels of ../shared when they are there.

Run as a module it builds a generated lake of any size for measurements:
`python -m tests.export.lakes LAKE --days 30 --records 10000`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import shutil
import time
from pathlib import Path

import orjson

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.publish import run_partition
from geospatial_pipeline.lake.store import ObjectStore
from geospatial_pipeline.settings import PipelineSettings, load_settings
from tests.conftest import FIXTURE_DATES, FIXTURES, REPO

REAL_PARCELS = REPO.parent / "shared" / "real-parcels" / "parcels.geojsonl.gz"
REAL_PARCELS_DAY = dt.date(2025, 3, 2)  # the day the real parcels are meant for (some arrive late for 03-01)
GRID_DAYS = (dt.date(2025, 2, 1), dt.date(2025, 2, 2))


def settings_for(lake: Path | None = None, **overrides) -> PipelineSettings:
    """The fixture settings (Central Europe), with invalid geometries repaired so `repaired` rows exist."""
    local = {"local_lake_path": lake} if lake is not None else {}
    return load_settings(FIXTURES / "config.yaml", **{"repair_invalid": True, **local, **overrides})


def publish(store: ObjectStore, settings: PipelineSettings, days) -> dict[str, dict]:
    """run_partition for each day in order (a day listed twice is re-run, as the backfill sensor would);
    the counts of each day's last run."""
    counts = {}
    for day in days:
        day = dt.date.fromisoformat(day) if isinstance(day, str) else day
        report = run_partition(store, day, settings.rules(), target_crs=settings.target_crs)
        counts[day.isoformat()] = report.counts
    return counts


def land(store: ObjectStore, day: dt.date, name: str, data: bytes) -> None:
    store.put_bytes(keys.raw_prefix(day) + name, data)


def fixture_lake(store: ObjectStore, settings: PipelineSettings) -> dict[str, dict]:
    """The three fixture days, then days 1 and 2 again: their late fields merged in."""
    for path in sorted((FIXTURES / "raw").rglob("*")):
        if path.is_file():
            store.put_bytes(path.relative_to(FIXTURES).as_posix(), path.read_bytes())
    return publish(store, settings, [*FIXTURE_DATES, FIXTURE_DATES[0], FIXTURE_DATES[1]])


def _square(lon: float, lat: float, size: float) -> list:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size * 0.65], [lon, lat + size * 0.65], [lon, lat]]
    return [[[round(x, 7), round(y, 7)] for x, y in ring]]


def _record(field_id: str, coordinates: list, intended: dt.date, arrival: str, **extra) -> bytes:
    props = {"field_id": field_id, "arrival_time": arrival, "processing_date": intended.isoformat(), **extra}
    geometry = {"type": "Polygon", "coordinates": coordinates}
    return orjson.dumps({"type": "Feature", "geometry": geometry, "properties": props})


def grid_lines(columns: int = 6, rows: int = 4) -> dict[dt.date, list[bytes]]:
    """Landing lines of a grid of fields near 10.0 E, 50.0 N meant for GRID_DAYS[0]: every fifth arrives a
    day late (in GRID_DAYS[1]'s batch), one is a bow-tie (repaired), one has no valid arrival time
    (quarantined, geometry intact)."""
    first, second = GRID_DAYS
    lines: dict[dt.date, list[bytes]] = {first: [], second: []}
    size = 0.0016
    for n in range(columns * rows):
        lon, lat = 10.0 + (n % columns) * size * 1.25, 50.0 + (n // columns) * size
        coordinates = _square(lon, lat, size)
        field_id = f"GRID-{n:02d}"
        if n == 7:  # a bow-tie: vertices 1 and 2 swapped
            ring = coordinates[0]
            ring[1], ring[2] = ring[2], ring[1]
        if n % 5 == 3:
            lines[second].append(_record(field_id, coordinates, first, f"{second}T06:00:00Z", data={"crop": "rye"}))
        else:
            lines[first].append(_record(field_id, coordinates, first, f"{first}T09:00:00Z", data={"crop": "wheat"}))
    lon, lat = 10.0 + columns * size * 1.25, 50.0
    lines[first].append(_record("GRID-BAD", _square(lon, lat, size), first, "yesterday"))
    lines[second].append(_record("GRID-B1", _square(10.0, 50.0 - size * 1.5, size), second, f"{second}T08:00:00Z"))
    return lines


def grid_lake(store: ObjectStore, settings: PipelineSettings) -> dict[str, dict]:
    """The grid published for both days, and day 1 again with its late fields merged in."""
    for day, lines in grid_lines().items():
        land(store, day, "grid.geojsonl", b"\n".join(lines) + b"\n")
    first, second = GRID_DAYS
    return publish(store, settings, [first, second, first])


def generated_batch(day: dt.date, records: int, seed: int, cache: Path) -> bytes:
    """The benchmark's seeded batch (made for benchmarks.generate.PARTITION) moved to `day`: its three
    dates (the day before, the day, the day after) are rewritten in its text."""
    from benchmarks import generate

    data = generate.generate(generate.batch_path(cache, records, seed), records, seed, workers=1).read_bytes()
    base = generate.PARTITION
    shifts = {-1: day - dt.timedelta(days=1), 0: day, 1: day + dt.timedelta(days=1)}
    for offset in shifts:  # through placeholders, so a rewritten date is never rewritten again
        data = data.replace((base + dt.timedelta(days=offset)).isoformat().encode(), f"@{offset:+d}@".encode())
    for offset, target in shifts.items():
        data = data.replace(f"@{offset:+d}@".encode(), target.isoformat().encode())
    return data


def generated_lake(
    store: ObjectStore, settings: PipelineSettings, days: list[dt.date], records: int, cache: Path
) -> dict[str, dict]:
    """A generated batch of `records` per day (seeded by the date: a day's batch is the same in any lake),
    published day after day."""
    for day in days:
        land(store, day, "generated.geojsonl", generated_batch(day, records, day.toordinal(), cache))
    return publish(store, settings, days)


def real_parcels_lake(store: ObjectStore, settings: PipelineSettings) -> dict[str, dict]:
    """The 1,500 real parcels landed for 2025-03-02; then 03-01 is published with the late ones merged."""
    land(store, REAL_PARCELS_DAY, "parcels.geojsonl", gzip.decompress(REAL_PARCELS.read_bytes()))
    return publish(store, settings, [REAL_PARCELS_DAY, REAL_PARCELS_DAY - dt.timedelta(days=1)])


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a generated lake by running the pipeline on it")
    parser.add_argument("lake", type=Path)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 3, 1))
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--repair", action="store_true", help="repair invalid geometries (default: quarantine them)")
    args = parser.parse_args()
    from geospatial_pipeline.lake.local_store import LocalStore

    if args.lake.exists():
        shutil.rmtree(args.lake)
    days = [args.start + dt.timedelta(days=n) for n in range(args.days)]
    started = time.perf_counter()
    counts = generated_lake(
        LocalStore(args.lake), settings_for(args.lake, repair_invalid=args.repair), days, args.records, args.cache
    )
    rows = sum(c["published_rows"] for c in counts.values())
    print(f"{args.lake}: {len(days)} days, {rows} published rows, built in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
