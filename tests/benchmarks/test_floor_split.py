"""The I/O floor's split: every file it makes reads with pyarrow.json, holds one geometry type, and the lines
pyarrow cannot read at all are left out and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.json as pajson

from benchmarks.floor_split import column_kinds, describe, split_for_pyarrow

POLYGON = {"type": "Polygon", "coordinates": [[[1.5, 2.0], [3, 4], [5.25, 6], [1.5, 2.0]]]}
MULTI = {"type": "MultiPolygon", "coordinates": [[[[1.5, 2.0], [3, 4], [5.25, 6], [1.5, 2.0]]]]}


def feature(geometry: dict, **props) -> bytes:
    properties = {"field_id": "F-1", "arrival_time": "2025-03-03T10:00:00Z", **props}
    return json.dumps({"type": "Feature", "geometry": geometry, "properties": properties}).encode() + b"\n"


def test_kinds_follow_paths_and_coordinate_depth():
    kinds = column_kinds(json.loads(feature(MULTI, data={"tags": ["a"], "n": 1})))
    assert kinds["/geometry/coordinates/[]/[]/[]/[]"] == "number"
    assert kinds["/properties/data/tags/[]"] == "string"
    assert kinds["/properties/data/n"] == "number"


def test_split_by_geometry_and_kinds_leaving_out_what_pyarrow_cannot_read(tmp_path):
    lines = [
        feature(POLYGON),
        feature(MULTI),
        feature(POLYGON, field_id=123),  # a number where the others hold text
        b"not json\n",
        feature(POLYGON, data={"tags": ["a", 1]}),  # a list mixing kinds: pyarrow reads no such line
        feature(MULTI, arrival_time=None),
        feature(POLYGON, data={"organic": True}),
        b"\n",
    ]
    source = tmp_path / "batch.geojsonl"
    source.write_bytes(b"".join(lines))
    summary = split_for_pyarrow(source)
    assert summary["records"] == 7 and summary["left_out"] == 2
    assert sum(f["records"] for f in summary["files"]) == 5
    for f in summary["files"]:
        table = pajson.read_json(f["path"])
        assert table.num_rows == f["records"]
        types = {json.loads(line)["geometry"]["type"] for line in Path(f["path"]).read_bytes().splitlines()}
        assert types == {f["geometry"]}
    assert sorted((f["geometry"], f["records"]) for f in summary["files"]) == [
        ("MultiPolygon", 2),
        ("Polygon", 1),
        ("Polygon", 2),
    ]
    assert describe(summary) == "3 files (Polygon 3 in 2 files, MultiPolygon 2); 2 lines left out"


def test_a_batch_that_reads_as_it_is_is_its_own_floor_and_the_split_is_cached(tmp_path):
    source = tmp_path / "batch.geojsonl"
    source.write_bytes(feature(POLYGON) * 3)
    summary = split_for_pyarrow(source)
    assert summary["files"] == [{"path": str(source), "geometry": "Polygon", "records": 3}]
    assert not (tmp_path / "batch.geojsonl.floor").exists()
    cached = (tmp_path / "batch.geojsonl.floor.json").read_text()
    assert split_for_pyarrow(source) == summary
    source.write_bytes(feature(POLYGON) + feature(MULTI))  # a new batch under the same name: split again
    assert [f["geometry"] for f in split_for_pyarrow(source)["files"]] == ["Polygon", "MultiPolygon"]
    assert (tmp_path / "batch.geojsonl.floor.json").read_text() != cached


def test_the_cached_split_moves_with_its_batch(tmp_path):
    first, moved = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    source = first / "batch.geojsonl"
    source.write_bytes(feature(POLYGON) + feature(MULTI) + feature(POLYGON))
    split_for_pyarrow(source)
    first.rename(moved)
    again = split_for_pyarrow(moved / "batch.geojsonl")
    assert [Path(f["path"]).parent for f in again["files"]] == [moved / "batch.geojsonl.floor"] * 2
    assert sum(len(pajson.read_json(f["path"])) for f in again["files"]) == 3
