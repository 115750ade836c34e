"""core/features.py: a chunk of record texts read in one pass. Each record gets what it says (properties,
CRS, geometry) or the reasons it fails, in its own position; records rejected while reading come last;
no record's failure changes what its neighbours get."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.reasons import Reason

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50.01], [10, 50]]]}
GOOD = {"field_id": "F-1", "arrival_time": "2025-01-02T08:00:00Z", "processing_date": "2025-01-02"}


def feature(properties: object, geometry: object = SQUARE) -> bytes:
    return json.dumps({"type": "Feature", "properties": properties, "geometry": geometry}).encode()


def codes(parsed, r: int) -> list[str]:
    return [reason.value for reason, _ in parsed.problems.get(r, [])]


def test_each_record_is_judged_on_its_own():
    texts = [
        feature(GOOD),
        b'{"type": "Feature", "properties": {',  # cut short
        b"[1, 2, 3]",
        json.dumps({"type": "Feature", "geometry": SQUARE}).encode(),  # no properties
        feature({**GOOD, "arrival_time": "2024-06-31T00:00:00Z", "crs": "EPSG:32633"}),  # impossible date
        feature({**GOOD, "field_id": "F-2", "crs": "EPSG:3035"}, geometry=None),
        feature({**GOOD, "field_id": "F-3"}),
    ]
    chunk = RawChunk(
        "raw/2025-01-02/a.geojsonl",
        texts=texts,
        lines=list(range(1, len(texts) + 1)),
        collection_crs="OGC:CRS84",
        read_rejects=[(99, b'{"type": "Feature", "prop', Reason.RECORD_TOO_LARGE, "record larger than 10 bytes")],
    )
    parsed = parse_chunk(chunk)

    assert len(parsed.texts) == 8 and parsed.lines.tolist() == [1, 2, 3, 4, 5, 6, 7, 99]
    assert [codes(parsed, r) for r in range(8)] == [
        [],
        ["malformed_json"],
        ["not_a_feature"],
        ["not_a_feature"],
        ["invalid_arrival_time"],
        ["geometry_missing"],
        [],
        ["record_too_large"],
    ]
    assert parsed.structural.tolist() == [False, True, True, True, False, False, False, True]
    assert parsed.properties.valid.tolist() == [True, False, False, False, False, True, True, False]
    assert parsed.properties.field_id.to_pylist() == ["F-1", None, None, None, None, "F-2", "F-3", None]
    # The collection's CRS unless the record names its own, even when its other properties fail.
    assert parsed.crs.tolist() == ["OGC:CRS84", "OGC:CRS84", "OGC:CRS84", "OGC:CRS84", "EPSG:32633", "EPSG:3035",
                                   "OGC:CRS84", None]  # fmt: skip
    # Geometries of the records that are Features with properties, each under its record's index.
    assert parsed.shapes.index.tolist() == [0, 4, 6]
    assert parsed.has_z.tolist() == [False, False, False]


@pytest.mark.parametrize("spelling", [{}, {"indent": 2}, {"separators": (",", ":")}, {"sort_keys": True}])
def test_the_result_does_not_depend_on_the_spelling(spelling):
    record = {"properties": {**GOOD, "data": {"crop": "wheat", "yield": 7.25}}, "geometry": SQUARE, "type": "Feature"}
    parsed = parse_chunk(RawChunk("k", texts=[json.dumps(record, **spelling).encode()], lines=[1]))
    assert parsed.problems == {}
    assert json.loads(parsed.properties.data[0].as_py()) == {"crop": "wheat", "yield": 7.25}
    assert parsed.properties.arrival[0] == np.datetime64("2025-01-02T08:00:00", "us")
    assert parsed.shapes.coords.tolist() == SQUARE["coordinates"][0]


def test_a_non_finite_last_number_is_caught_before_records_without_numbers():
    """The flags per record are summed over each record's own numbers, even when the records after it
    hold none (a per-group sum that clipped the trailing empty groups' starts once cut the last one short)."""
    ring = "[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50.01], [10, NaN]]"
    texts = [
        b'{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": ['
        + ring.encode()
        + b"]}}",
        feature(GOOD, geometry=None),
    ]
    parsed = parse_chunk(RawChunk("k", texts=texts, lines=[1, 2]))
    assert "geometry_non_finite" in codes(parsed, 0)
