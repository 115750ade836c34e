"""Raw files into bounded chunks; unreadable parts become rejects with positions, never exceptions."""

import gzip
import io
import json

from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.reading import is_raw_batch_file, iter_chunks
from geospatial_pipeline.core.reasons import Reason


def feature(fid: str, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [1, 2]},
        "properties": {
            "field_id": fid,
            "arrival_time": "2025-01-02T00:00:00Z",
            "processing_date": "2025-01-02",
            **props,
        },
    }


def chunks(key: str, data: bytes, chunk_records=1000, max_record_bytes=10_000, max_collection_bytes=1_000_000):
    return list(
        iter_chunks(
            key,
            io.BytesIO(data),
            chunk_records=chunk_records,
            max_record_bytes=max_record_bytes,
            max_collection_bytes=max_collection_bytes,
        )
    )


def lines(*items) -> bytes:
    return b"\n".join(i if isinstance(i, bytes) else json.dumps(i).encode() for i in items) + b"\n"


def test_lines_keep_their_numbers_and_blank_lines_are_not_records():
    data = lines(feature("a"), b"", feature("b"), b"   ", feature("c"))
    [chunk] = chunks("raw/x.geojsonl", data)
    assert chunk.lines == [1, 3, 5]
    assert len(chunk.texts) == 3


def test_chunks_are_bounded():
    data = lines(*[feature(str(i)) for i in range(25)])
    got = chunks("raw/x.ndjson", data, chunk_records=10)
    assert [len(c) for c in got] == [10, 10, 5]
    assert got[2].lines == list(range(21, 26))


def test_crlf_and_record_separators_are_tolerated():
    data = b"\x1e" + json.dumps(feature("a")).encode() + b"\r\n" + json.dumps(feature("b")).encode()
    [chunk] = chunks("raw/x.geojsonl", data)
    parsed = parse_chunk(chunk)
    assert parsed.problems == {}
    assert parsed.properties.field_id.to_pylist() == ["a", "b"]


def test_oversized_line_is_quarantined_without_stopping_the_rest():
    big = json.dumps(feature("big", data={"pad": "x" * 5000})).encode()
    data = lines(feature("a"), big, feature("b"))
    [chunk] = chunks("raw/x.geojsonl", data, max_record_bytes=1000)
    parsed = parse_chunk(chunk)
    assert sorted(parsed.lines) == [1, 2, 3]
    rejected = {parsed.lines[i]: r[0][0] for i, r in parsed.problems.items()}
    assert rejected == {2: Reason.RECORD_TOO_LARGE}
    assert len(parsed.texts[parsed.lines.tolist().index(2)]) <= 1024  # only a prefix is kept


def test_oversized_line_spanning_read_blocks_is_skipped_to_its_newline(monkeypatch):
    import geospatial_pipeline.core.reading as reading

    monkeypatch.setattr(reading, "READ_BLOCK", 64)
    big = b'{"type":"Feature","pad":"' + b"x" * 1000 + b'"}'
    data = lines(feature("a"), big, feature("b"))
    [chunk] = chunks("raw/x.geojsonl", data, max_record_bytes=200)
    parsed = parse_chunk(chunk)
    assert sorted(parsed.lines) == [1, 2, 3]
    assert [parsed.lines[i] for i in parsed.problems] == [2]
    ids = parsed.properties.field_id.to_pylist()
    assert [ids[i] for i in range(len(ids)) if i not in parsed.problems] == ["a", "b"]


def test_malformed_and_non_feature_lines_get_reasons():
    data = lines(b'{"type":"Feature","geometry":', b"[1, 2]", {"type": "Point", "coordinates": [0, 0]}, feature("ok"))
    [chunk] = chunks("raw/x.geojsonl", data)
    parsed = parse_chunk(chunk)
    reasons = {parsed.lines[i]: [r for r, _ in rs] for i, rs in parsed.problems.items()}
    assert reasons == {1: [Reason.MALFORMED_JSON], 2: [Reason.NOT_A_FEATURE], 3: [Reason.NOT_A_FEATURE]}


def test_nan_coordinates_are_recognised_not_called_malformed():
    text = json.dumps(feature("n")).replace("[1, 2]", "[NaN, 1]").encode()
    [chunk] = chunks("raw/x.geojsonl", text)
    parsed = parse_chunk(chunk)
    assert [r for r, _ in parsed.problems[0]] == [Reason.GEOMETRY_NON_FINITE]


def test_feature_collection_with_legacy_crs_member():
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
        "features": [feature(str(i)) for i in range(5)],
    }
    got = chunks("raw/x.geojson", json.dumps(doc).encode(), chunk_records=2)
    assert [c.lines for c in got] == [[1, 2], [3, 4], [5]]
    assert all(c.collection_crs == "urn:ogc:def:crs:EPSG::32633" for c in got)


def test_feature_collection_over_the_size_limit_is_one_reject():
    doc = {"type": "FeatureCollection", "features": [feature(str(i)) for i in range(100)]}
    [chunk] = chunks("raw/x.geojson", json.dumps(doc).encode(), max_collection_bytes=1000)
    parsed = parse_chunk(chunk)
    assert [r for r, _ in parsed.problems[0]] == [Reason.RECORD_TOO_LARGE]


def test_gzip_input_is_read_and_a_corrupt_tail_is_quarantined():
    body = lines(*[feature(str(i)) for i in range(50)])
    [chunk] = chunks("raw/x.geojsonl.gz", gzip.compress(body))
    assert len(chunk.texts) == 50 and not chunk.read_rejects

    corrupt = gzip.compress(body)[:-30] + b"garbage-garbage-garbage-garbage"
    got = chunks("raw/x.geojsonl.gz", corrupt)
    parsed = [parse_chunk(c) for c in got]
    reasons = [r for p in parsed for rs in p.problems.values() for r, _ in rs]
    assert Reason.FILE_UNREADABLE in reasons


def test_raw_batch_file_names():
    assert is_raw_batch_file("raw/2025-01-01/a.geojsonl")
    assert is_raw_batch_file("raw/2025-01-01/a.GEOJSON")
    assert is_raw_batch_file("raw/2025-01-01/a.ndjson.gz")
    assert not is_raw_batch_file("raw/2025-01-01/notes.csv")
    assert not is_raw_batch_file("raw/2025-01-01/.hidden.geojsonl")
