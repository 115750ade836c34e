"""The small published objects: the per-field late objects (built a column at a time, byte for byte the
single-row definitions) and the manifest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.lateness import iso_utc
from geospatial_pipeline.core.schema import LATE_SCHEMA
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.writers import late_object_jobs, late_texts, write_manifest

# Field ids as the identity rules let them through: anything printable without a path separator.
FIELD_IDS = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=40
).filter(lambda s: s not in (".", ".."))
ROWS = st.lists(
    st.tuples(
        FIELD_IDS,
        st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
        st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
        st.floats(allow_nan=False, allow_infinity=False),
        st.one_of(st.none(), st.text(max_size=20)),
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda r: r[0],
)


def late_text(field_id: str, intended: dt.date, arrival: dt.datetime, detected_in: dt.date) -> str:
    """The text object of one late field, as the writer makes it for a column of them."""
    one = [pa.array([v], pa.string()) for v in (intended.isoformat(), iso_utc(arrival), detected_in.isoformat())]
    return late_texts(pa.array([field_id], pa.string()), *one)[0].as_py()


def _late_table(rows) -> pa.Table:
    n = len(rows)
    square = '{"type":"Polygon","coordinates":[[[0.0,0.0],[1.0,0.0],[1.0,1.0],[0.0,0.0]]]}'
    columns = {
        "field_id": [r[0] for r in rows],
        "processing_date": [r[1] for r in rows],
        "arrival_time": [r[2].replace(tzinfo=dt.UTC) for r in rows],
        "arrived_late": [True] * n,
        "detected_in": [r[1] + dt.timedelta(days=3) for r in rows],
        "late_reason": [r[4] for r in rows],
        "source_crs": ["EPSG:4326"] * n,
        "area_ha": [r[3] for r in rows],
        "perimeter_m": [abs(r[3]) for r in rows],
        "repaired": [j % 2 == 0 for j in range(n)],
        "data": ['{"crop":"wheat","n":[1,2]}'] * n,
        "source_key": ['raw/2025-01-01/a "b".geojsonl'] * n,
        "source_line": list(range(1, n + 1)),
        "geometry": [b"\x01"] * n,
        "bbox": [{"xmin": 0.0, "ymin": 0.0, "xmax": 1.0, "ymax": 1.0}] * n,
        "geometry_geojson": [square] * n,
    }
    return pa.table(columns, schema=LATE_SCHEMA)


def _expected(row: dict) -> list[tuple[str, bytes, str]]:
    """The two objects of one row, spelled out field by field."""
    fid, intended = row["field_id"], row["processing_date"]
    feature = {
        "type": "Feature",
        "id": fid,
        "geometry": orjson.loads(row["geometry_geojson"]),
        "properties": {
            "field_id": fid,
            "processing_date": intended.isoformat(),
            "arrival_time": iso_utc(row["arrival_time"]),
            "arrived_late": True,
            "late_reason": row["late_reason"],
            "detected_in": row["detected_in"].isoformat(),
            "source_crs": row["source_crs"],
            "area_ha": row["area_ha"],
            "perimeter_m": row["perimeter_m"],
            "repaired": row["repaired"],
            "source_key": row["source_key"],
            "source_line": row["source_line"],
            "data": orjson.loads(row["data"]),
        },
    }
    text = late_text(fid, intended, row["arrival_time"], row["detected_in"])
    return [
        (keys.late_object_key(intended, fid, ".geojson"), orjson.dumps(feature), "application/geo+json"),
        (keys.late_object_key(intended, fid, ".txt"), text.encode(), "text/plain; charset=utf-8"),
    ]


@given(ROWS)
@settings(max_examples=150, deadline=None)
def test_late_objects_are_the_single_row_definitions(rows):
    table = _late_table(rows)
    expected = [job for row in table.to_pylist() for job in _expected(row)]
    assert late_object_jobs(table) == expected


def test_the_text_object_says_which_field_is_late_for_which_date_and_why():
    arrival = dt.datetime(2025, 1, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    text = late_text("F-7 ü", dt.date(2025, 1, 1), arrival, dt.date(2025, 1, 4))
    assert text == (
        "Late field: F-7 ü for partition 2025-01-01, arrived 2025-01-03T04:05:06.000007Z, detected in 2025-01-04\n"
    )


def test_no_late_rows_no_objects():
    assert late_object_jobs(LATE_SCHEMA.empty_table()) == []


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "", "tab\there", "back\\slash", "del\x7f", "x" * 250])
def test_an_unsafe_field_id_fails_with_the_single_key_error(bad):
    rows = [("F-1", dt.date(2025, 1, 1), dt.datetime(2025, 1, 3), 1.0, None)] * 2
    table = _late_table([rows[0], (bad, *rows[1][1:])])
    with pytest.raises(keys.UnsafeKeyError) as single:
        keys.late_object_key(dt.date(2025, 1, 1), bad, ".geojson")
    with pytest.raises(keys.UnsafeKeyError) as columns:
        late_object_jobs(table)
    assert str(columns.value) == str(single.value)


def test_the_manifest_is_sorted_indented_json_at_its_key(tmp_path: Path):
    store = LocalStore(tmp_path)
    info = write_manifest(store, dt.date(2025, 1, 2), {"outputs": {"b": 1, "a": 2}, "counts": {"late": 0}})
    assert info.key == "manifests/2025-01-02.json"
    text = (tmp_path / "manifests" / "2025-01-02.json").read_text()
    assert text.endswith("}\n") and text.index('"counts"') < text.index('"outputs"')
    assert text.index('"a"') < text.index('"b"') and '\n  "counts": {\n    "late": 0' in text
    assert json.loads(text) == {"outputs": {"b": 1, "a": 2}, "counts": {"late": 0}}
