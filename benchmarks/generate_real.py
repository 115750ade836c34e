"""A batch of any size built from the 1,500 real parcels in `../shared/real-parcels`.

Record n is parcel n % 1500 with its line kept as published (member order, spacing, the geometry member's
text, `crs`, `data`), except three property values: `field_id` becomes `{original}-{n // 1500}` (unique),
and `arrival_time` and `processing_date` put the record in the benchmark's partition, about 10% late (half
meant for the day before, half arriving after the window). Coordinates are never touched.

The parcels live beside the repository (`../shared`), not in it: when they are absent the batch cannot
be built, and `parcels_file()` says so instead of failing.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.generate import PARTITION, write_once

PARCELS_ENV = "BENCH_REAL_PARCELS"
PARCELS_RELATIVE = Path("shared") / "real-parcels" / "parcels.geojsonl.gz"
REPO = Path(__file__).resolve().parents[1]
LATE_SHARE = 0.10
BLOCK = 50_000
STREAM = 0x9EA1
HOLES = ("field_id", "arrival_time", "processing_date")
_DECODER = json.JSONDecoder()
_BLANKS = " \t\r\n"


def parcels_file(explicit: Path | None = None) -> tuple[Path | None, str]:
    """The parcels file, and if it is missing, why: `explicit`, $BENCH_REAL_PARCELS, else `../shared`
    beside the repository (or beside a folder above it, for a git worktree made inside another folder)."""
    given = explicit or (Path(os.environ[PARCELS_ENV]) if os.environ.get(PARCELS_ENV) else None)
    if given is not None:
        return (given, "") if given.is_file() else (None, f"{given} does not exist")
    for folder in REPO.parents:
        if (folder / PARCELS_RELATIVE).is_file():
            return folder / PARCELS_RELATIVE, ""
    return None, f"../{PARCELS_RELATIVE} (beside the repository) was not found; pass --real-parcels PATH"


def _skip_blanks(text: str, at: int) -> int:
    while at < len(text) and text[at] in _BLANKS:
        at += 1
    return at


def member_spans(text: str, start: int = 0) -> tuple[dict[str, tuple[int, int]], int]:
    """Where each member's value lies in the JSON object that starts at `start`: {key: (begin, end)}."""
    at = _skip_blanks(text, start)
    if text[at] != "{":
        raise ValueError(f"expected an object at character {at}")
    spans: dict[str, tuple[int, int]] = {}
    at = _skip_blanks(text, at + 1)
    while text[at] != "}":
        key, at = _DECODER.raw_decode(text, at)
        at = _skip_blanks(text, at)
        if text[at] != ":":
            raise ValueError(f"expected ':' at character {at}")
        begin = _skip_blanks(text, at + 1)
        _, end = _DECODER.raw_decode(text, begin)
        spans[key] = (begin, end)
        at = _skip_blanks(text, end)
        if text[at] == ",":
            at = _skip_blanks(text, at + 1)
    return spans, at + 1


def template(line: str) -> tuple[list[str], str]:
    """The line cut around the values of `field_id`, `arrival_time` and `processing_date`: the text
    between them (kept), in order, and the original field id."""
    top, _ = member_spans(line)
    props_begin, _ = top["properties"]
    props, _ = member_spans(line, props_begin)
    holes = sorted((props[k], k) for k in HOLES)
    if [k for _, k in holes] != list(HOLES):
        raise ValueError("expected field_id, arrival_time and processing_date in that order")
    pieces, at = [], 0
    for (begin, end), _ in holes:
        pieces.append(line[at:begin])
        at = end
    pieces.append(line[at:])
    original = json.loads(line[slice(*props["field_id"])])
    return pieces, original


def load_templates(parcels: Path) -> list[tuple[list[str], str]]:
    with gzip.open(parcels, "rt", encoding="utf-8") as f:
        return [template(line.rstrip("\n")) for line in f if line.strip()]


def _block(templates: list[tuple[list[str], str]], seed: int, index: int, start: int, count: int) -> bytes:
    rng = np.random.default_rng([seed, STREAM, index])
    lateness = rng.random(count)
    late_prev, late_after = lateness < LATE_SHARE / 2, (lateness >= LATE_SHARE / 2) & (lateness < LATE_SHARE)
    seconds = np.where(late_after, rng.integers(86_400 + 60, 86_400 + 72_000, count), rng.integers(0, 86_400, count))
    day = dt.datetime.combine(PARTITION, dt.time(), dt.UTC)
    today, yesterday = PARTITION.isoformat(), (PARTITION - dt.timedelta(days=1)).isoformat()
    out = []
    for i in range(count):
        n = start + i
        pieces, original = templates[n % len(templates)]
        arrival = (day + dt.timedelta(seconds=int(seconds[i]))).strftime("%Y-%m-%dT%H:%M:%SZ")
        values = (f"{original}-{n // len(templates)}", arrival, yesterday if late_prev[i] else today)
        out.append(
            pieces[0]
            + json.dumps(values[0], ensure_ascii=False)
            + pieces[1]
            + json.dumps(values[1])
            + pieces[2]
            + json.dumps(values[2])
            + pieces[3]
            + "\n"
        )
    return "".join(out).encode("utf-8")


def generate(path: Path, records: int, seed: int = 42, parcels: Path | None = None) -> Path:
    """Write `records` records to `path` (atomically) unless the file is already there."""

    def blocks() -> Iterator[bytes]:
        source, why = parcels_file(parcels)
        if source is None:
            raise FileNotFoundError(f"real parcels: {why}")
        templates = load_templates(source)
        for index, start in enumerate(range(0, records, BLOCK)):
            yield _block(templates, seed, index, start, min(BLOCK, records - start))

    return write_once(path, blocks)


def batch_path(cache: Path, records: int, seed: int) -> Path:
    return Path(cache) / f"real-{records}-s{seed}.geojsonl"
