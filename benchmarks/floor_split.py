"""Split a batch into files that pyarrow.json can read, for the I/O floor: a line-level pass, not timed.

pyarrow.json infers one type per column for a whole file: a column cannot hold Polygon coordinates (three
levels of lists) and MultiPolygon coordinates (four), nor a string in one record and a number in another.
So the lines go, in order, into the first file of their geometry type whose columns they agree with; a line
that agrees with no file opens a new one. A line pyarrow cannot read at all (not JSON, not an object, a
list mixing kinds) is left out of the floor and counted. Each file is then read once with pyarrow here,
untimed, so the timed floor never meets an error; if one still fails, it is cut in halves until every part
reads (a lone line that fails is left out too).

The split is cached beside the batch (`<batch>.floor/` and `<batch>.floor.json`) and reused while the
batch is the same file; a batch that needs no split is its own single floor file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from benchmarks.baselines import BLOCK


class Conflict(Exception):
    """A record whose own members disagree (a list mixing kinds): pyarrow cannot read it."""


def _kind(value) -> str | None:
    if value is None:
        return None  # null fits any column
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def column_kinds(feature: dict) -> dict[str, str]:
    """The JSON kind at every path of the record (list items share their list's path + '/[]')."""
    kinds: dict[str, str] = {}

    def note(path: str, kind: str) -> None:
        if kinds.setdefault(path, kind) != kind:
            raise Conflict(path)

    def walk(value, path: str) -> None:
        kind = _kind(value)
        if kind is None:
            return
        note(path, kind)
        if kind == "object":
            for key, item in value.items():
                if path == "/geometry" and key == "coordinates" and isinstance(item, list):
                    coordinates(item, f"{path}/coordinates")
                else:
                    walk(item, f"{path}/{key}")
        elif kind == "array":
            for item in value:
                walk(item, f"{path}/[]")

    def coordinates(value: list, path: str) -> None:
        # Nesting depth from the first items (the geometry type fixes it; a full walk of every vertex
        # would only repeat it): array levels, then numbers.
        note(path, "array")
        while value and isinstance(value[0], list):
            value, path = value[0], f"{path}/[]"
            note(path, "array")
        if value:
            note(f"{path}/[]", "number")

    for key, item in feature.items():
        walk(item, f"/{key}")
    return kinds


def _geometry_type(feature: dict) -> str:
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    return kind if isinstance(kind, str) else "no geometry"


class _Group:
    def __init__(self, path: Path, geometry: str):
        self.path, self.geometry, self.kinds, self.records = path, geometry, {}, 0
        self.file = path.open("wb")

    def accepts(self, kinds: dict[str, str]) -> bool:
        return all(self.kinds.get(p, k) == k for p, k in kinds.items())

    def add(self, line: bytes, kinds: dict[str, str]) -> None:
        self.kinds.update(kinds)
        self.file.write(line if line.endswith(b"\n") else line + b"\n")
        self.records += 1


def _readable(data: bytes | Path) -> bool:
    source = data if isinstance(data, Path) else pa.BufferReader(data)
    try:
        pajson.read_json(source, read_options=pajson.ReadOptions(block_size=BLOCK))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _readable_parts(lines: list[bytes]) -> tuple[list[list[bytes]], int]:
    """Runs of `lines` that pyarrow reads, and how many single lines it cannot read at all."""
    if _readable(b"".join(lines)):
        return [lines], 0
    if len(lines) == 1:
        return [], 1
    half = len(lines) // 2
    (left, bad_left), (right, bad_right) = _readable_parts(lines[:half]), _readable_parts(lines[half:])
    return left + right, bad_left + bad_right


def split_for_pyarrow(source: Path) -> dict:
    """{"files": [{"path", "geometry", "records"}], "records", "left_out"} for `source` (cached)."""
    summary_path = source.with_name(source.name + ".floor.json")
    stamp = {"source": source.name, "bytes": source.stat().st_size, "mtime_ns": source.stat().st_mtime_ns}
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("stamp") == stamp:
            return _located(summary, source.parent)
    folder = source.with_name(source.name + ".floor")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    groups: list[_Group] = []
    records = left_out = 0
    with source.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            records += 1
            try:
                feature = orjson.loads(line)
                if not isinstance(feature, dict):
                    raise Conflict("not an object")
                kinds = column_kinds(feature)
            except (orjson.JSONDecodeError, Conflict):
                left_out += 1
                continue
            geometry = _geometry_type(feature)
            group = next((g for g in groups if g.geometry == geometry and g.accepts(kinds)), None)
            if group is None:
                group = _Group(folder / f"{len(groups):02d}-{geometry}.geojsonl", geometry)
                groups.append(group)
            group.add(line, kinds)
    files = []
    for group in groups:
        group.file.close()
        if _readable(group.path):
            files.append({"path": str(group.path), "geometry": group.geometry, "records": group.records})
            continue
        parts, bad = _readable_parts(group.path.read_bytes().splitlines(keepends=True))
        left_out += bad
        group.path.unlink()
        for n, part in enumerate(parts):
            path = group.path.with_name(f"{group.path.stem}-{n}.geojsonl")
            path.write_bytes(b"".join(part))
            files.append({"path": str(path), "geometry": group.geometry, "records": len(part)})
    if len(files) == 1 and left_out == 0:  # the batch reads as it is: no copy
        shutil.rmtree(folder)
        files = [{"path": str(source), "geometry": files[0]["geometry"], "records": records}]
    for file in files:  # kept relative to the batch's folder, so the cache may move with it
        file["path"] = str(Path(file["path"]).relative_to(source.parent))
    summary = {"stamp": stamp, "files": files, "records": records, "left_out": left_out}
    summary_path.write_text(json.dumps(summary, indent=1))
    return _located(summary, source.parent)


def _located(summary: dict, folder: Path) -> dict:
    """The cached summary with each file's path under `folder`, where the batch is now."""
    return {**summary, "files": [{**f, "path": str(folder / f["path"])} for f in summary["files"]]}


def describe(summary: dict) -> str:
    """'2 files: Polygon 95,012, MultiPolygon 4,988; 0 lines left out' for the report."""
    by_geometry: dict[str, list[int]] = {}
    for f in summary["files"]:
        by_geometry.setdefault(f["geometry"], []).append(f["records"])
    parts = [
        f"{geometry} {sum(counts):,}" + (f" in {len(counts)} files" if len(counts) > 1 else "")
        for geometry, counts in by_geometry.items()
    ]
    n = len(summary["files"])
    return f"{n} file{'s' if n > 1 else ''} ({', '.join(parts)}); {summary['left_out']:,} lines left out"
