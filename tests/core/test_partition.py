"""One chunk through every rule, and the deduplication rule, without storage or Dagster."""

import datetime as dt
import json

import numpy as np
import orjson
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import dedupe, schema
from geospatial_pipeline.core.dedupe import winners
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


def keys_table(rows):
    return pa.table(
        {
            "processing_date": pa.array([dt.date.fromisoformat(r[0]) for r in rows], pa.date32()),
            "field_id": [r[1] for r in rows],
            "arrival_time": pa.array([dt.datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us", tz="UTC")),
            "seq": pa.array(np.arange(len(rows)), pa.int64()),
        }
    )


def test_latest_arrival_wins_per_date_and_field():
    rows = [
        ("2025-01-02", "A", "2025-01-02T09:00:00+00:00"),
        ("2025-01-02", "A", "2025-01-02T11:00:00+00:00"),  # wins
        ("2025-01-02", "A", "2025-01-02T10:00:00+00:00"),
        ("2025-01-01", "A", "2025-01-02T08:00:00+00:00"),  # another date: kept
        ("2025-01-02", "B", "2025-01-02T08:00:00+00:00"),
    ]
    assert winners(keys_table(rows)).tolist() == [1, 3, 4]


def test_ties_go_to_the_later_record():
    rows = [("2025-01-02", "A", "2025-01-02T09:00:00+00:00")] * 3
    assert winners(keys_table(rows)).tolist() == [2]


def _winners_by_hand(rows) -> list[int]:
    """The rule spelled out: per (date, id) the row with the latest arrival, then the highest seq."""
    best: dict = {}
    for seq, (day, fid, arrival) in enumerate(rows):
        if (day, fid) not in best or (arrival, seq) >= best[(day, fid)]:
            best[(day, fid)] = (arrival, seq)
    return sorted(seq for _, seq in best.values())


KEY_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["2025-01-01", "2025-01-02"]),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),  # short: many repeats, some empty
        st.sampled_from([f"2025-01-02T0{h}:00:00+00:00" for h in range(4)]),
    ),
    max_size=60,
)


def _chunked(table: pa.Table, cut: int) -> pa.Table:
    """The same rows in chunks starting at row `cut` (slices: offsets into shared buffers)."""
    return pa.concat_tables([table.slice(0, cut), table.slice(cut)]) if table.num_rows else table


@given(KEY_ROWS, st.integers(0, 60))
@settings(max_examples=300, deadline=None)
def test_winners_follow_the_rule_however_the_keys_are_chunked(rows, cut):
    assert winners(_chunked(keys_table(rows), min(cut, len(rows)))).tolist() == _winners_by_hand(rows)


@given(KEY_ROWS)
@settings(max_examples=100, deadline=None)
def test_winners_stay_exact_when_every_field_id_hashes_alike(rows):
    # a forced collision: grouping by hash alone would merge different fields; the exact path must not
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dedupe, "_string_hashes", lambda ids: np.zeros(len(ids), dtype=np.uint64))
        assert winners(keys_table(rows)).tolist() == _winners_by_hand(rows)


@given(st.lists(st.text(max_size=12), min_size=1, max_size=40), st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_string_hashes_depend_only_on_the_string(ids, cut):
    whole = dedupe._string_hashes(pa.chunked_array([pa.array(ids, pa.string())]))
    cut = min(cut, len(ids))
    sliced = pa.chunked_array([pa.array(ids, pa.string()).slice(0, cut), pa.array(["pad", *ids]).slice(1 + cut)])
    large = pa.chunked_array([pa.array(ids, pa.large_string())])
    assert whole.tolist() == dedupe._string_hashes(sliced).tolist() == dedupe._string_hashes(large).tolist()
    by_id = dict(zip(ids, whole.tolist(), strict=True))
    assert len(set(by_id.values())) == len(by_id)  # distinct ids, distinct hashes (for these sizes)


def test_reject_lines_are_geojson_features_gdal_can_read(tmp_path):
    import pyogrio

    out = classify(b'{"type":"Feature","geometry":{"type":"Polygon"', feat("a/b", "2025-01-02T05:00:00Z", "2025-01-02"))
    path = tmp_path / "rejected.geojsonl"
    path.write_bytes(b"\n".join(out.rejected) + b"\n")
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == 2
    assert set(frame["source_line"]) == {1, 2}
    assert orjson.loads(out.rejected[0])["properties"]["reason_codes"] == ["malformed_json"]
