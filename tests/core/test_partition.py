"""One chunk through every rule (core/partition.py), without storage or Dagster; the deduplication
rule has its own module, test_dedupe.py."""

import datetime as dt
import json

import orjson
import shapely

from geospatial_pipeline.core import schema
from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.partition import classify_chunk
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.core.schema import FIELD_SCHEMA

P = dt.date(2025, 1, 2)
NOW = dt.datetime(2025, 1, 3, 1, 0, tzinfo=dt.UTC)


def feat(fid, arrival, date, lon=10.0, **props):
    geometry = {
        "type": "Polygon",
        "coordinates": [[[lon, 50], [lon + 0.01, 50], [lon + 0.01, 50.01], [lon, 50.01], [lon, 50]]],
    }
    return json.dumps(
        {
            "type": "Feature",
            "geometry": geometry,
            "properties": {"field_id": fid, "arrival_time": arrival, "processing_date": date, **props},
        }
    ).encode()


def classify(*texts, rules=Rules(), now=NOW):
    chunk = RawChunk("raw/2025-01-02/a.geojsonl", texts=list(texts), lines=list(range(1, len(texts) + 1)))
    return classify_chunk(parse_chunk(chunk), P, rules, now)


def rejected_reasons(outcome):
    return {
        json.loads(line)["properties"]["source_line"]: json.loads(line)["properties"]["reason_codes"]
        for line in outcome.rejected
    }


def test_outcomes_of_a_mixed_chunk():
    out = classify(
        feat("on", "2025-01-02T05:00:00Z", "2025-01-02"),
        feat("late-window", "2025-01-03T00:30:00Z", "2025-01-02"),
        feat("late-earlier", "2025-01-02T05:00:00Z", "2025-01-01"),
        feat("future", "2025-01-03T00:10:00Z", "2025-01-03"),
        feat("early", "2025-01-01T23:00:00Z", "2025-01-02"),
        feat("clock", "2025-01-03T02:00:00Z", "2025-01-02"),
        feat("old", "2024-12-31T05:00:00Z", "2024-12-31"),
    )
    assert out.on_time["field_id"].to_pylist() == ["on"]
    assert sorted(out.late["field_id"].to_pylist()) == ["late-earlier", "late-window"]
    assert rejected_reasons(out) == {
        4: ["future_partition"],
        5: ["arrival_before_intended_date"],
        6: ["arrival_in_future"],
        7: ["before_partition_start"],
    }
    assert out.records == 7


def test_clock_skew_allowance_is_respected():
    rules = Rules(max_clock_skew=dt.timedelta(hours=2))
    out = classify(feat("clock", "2025-01-03T02:00:00Z", "2025-01-02"), rules=rules)
    assert out.late["field_id"].to_pylist() == ["clock"] and not out.rejected


def test_rows_carry_the_published_columns():
    out = classify(feat("on", "2025-01-02T05:00:00+01:00", "2025-01-02", data={"b": 2, "a": [1]}))
    row = out.on_time.select(FIELD_SCHEMA.names).to_pylist()[0]
    assert row["arrival_time"] == dt.datetime(2025, 1, 2, 4, tzinfo=dt.UTC)
    assert row["processing_date"] == dt.date(2025, 1, 2)
    assert row["detected_in"] == P and row["arrived_late"] is False and row["late_reason"] is None
    assert json.loads(row["data"]) == {"a": [1], "b": 2}
    assert row["source_key"] == "raw/2025-01-02/a.geojsonl" and row["source_line"] == 1
    geometry = shapely.from_wkb(row["geometry"])
    assert list(row["bbox"].values()) == list(shapely.bounds(geometry))
    assert row["area_ha"] > 79


def test_data_past_what_one_string_array_holds_is_published_in_chunks(monkeypatch):
    texts = [feat(f"F{i}", "2025-01-02T05:00:00Z", "2025-01-02", data={"note": "x" * i}) for i in range(5)]
    whole = classify(*texts).on_time
    monkeypatch.setattr(schema, "_MAX_ARRAY_BYTES", 40)  # a few records' data to a chunk, as 2 GiB would be
    split = classify(*texts).on_time
    assert split["data"].num_chunks > 1
    assert split.equals(whole)


def test_late_rows_say_why_and_carry_rfc7946_geometry():
    out = classify(feat("late", "2025-01-02T05:00:00Z", "2025-01-01"))
    row = out.late.to_pylist()[0]
    assert row["arrived_late"] is True
    assert "after its intended partition 2025-01-01" in row["late_reason"]
    assert json.loads(row["geometry_geojson"])["type"] == "Polygon"


def test_every_problem_of_a_record_is_listed():
    text = json.dumps(
        {
            "type": "Feature",
            "geometry": None,
            "properties": {"field_id": "a/b", "arrival_time": "x", "processing_date": "2025-01-02"},
        }
    ).encode()
    out = classify(text)
    [line] = out.rejected
    props = json.loads(line)["properties"]
    assert props["reason_codes"] == ["geometry_missing", "invalid_arrival_time", "invalid_field_id"]
    assert props["raw"] == text.decode()
    assert all(r["message"] for r in props["reasons"])
    assert json.loads(line)["geometry"] is None


def test_reject_lines_are_geojson_features_gdal_can_read(tmp_path):
    import pyogrio

    out = classify(b'{"type":"Feature","geometry":{"type":"Polygon"', feat("a/b", "2025-01-02T05:00:00Z", "2025-01-02"))
    path = tmp_path / "rejected.geojsonl"
    path.write_bytes(b"\n".join(out.rejected) + b"\n")
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == 2
    assert set(frame["source_line"]) == {1, 2}
    assert orjson.loads(out.rejected[0])["properties"]["reason_codes"] == ["malformed_json"]
