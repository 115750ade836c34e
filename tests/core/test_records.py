"""Identity and time validation of raw properties: Pydantic from the JSON text, then the column rules."""

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from geospatial_pipeline.core.reasons import Reason
from geospatial_pipeline.core.records import property_columns

GOOD = {"field_id": "F-1", "arrival_time": "2025-01-01T05:00:00Z", "processing_date": "2025-01-01", "data": {"a": 1}}


def validate(items: list) -> tuple[list, dict]:
    """Each item as its JSON text through property_columns: a row per valid item (else None), problems."""
    texts = [item if isinstance(item, bytes) else json.dumps(item).encode() for item in items]
    nonfinite = np.array([b"NaN" in t or b"Infinity" in t for t in texts])
    out = property_columns(texts, nonfinite)
    rows = [
        SimpleNamespace(
            field_id=out.field_id[k].as_py(),
            arrival_time=out.arrival[k].astype(dt.datetime).replace(tzinfo=dt.UTC),
            processing_date=out.intended[k].astype(dt.date),
            data=orjson.loads(out.data[k].as_py()),
            crs=out.crs[k],
        )
        if out.valid[k]
        else None
        for k in range(len(texts))
    ]
    return rows, out.problems


def one(**changes):
    rows, problems = validate([GOOD | changes])
    return rows[0], {r for r, _ in problems.get(0, [])}


def test_valid_record_parses_to_utc_and_date():
    model, reasons = one()
    assert reasons == set()
    assert model.arrival_time == dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)
    assert model.processing_date == dt.date(2025, 1, 1)
    assert model.data == {"a": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T05:00:00", dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)),  # naive means UTC
        ("2025-01-01T07:00:00+02:00", dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)),
        ("2025-01-01 05:00:00Z", dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)),
        ("2025-01-01T05:00:00.250Z", dt.datetime(2025, 1, 1, 5, 0, 0, 250000, tzinfo=dt.UTC)),
    ],
)
def test_arrival_time_formats_normalise_to_utc(text, expected):
    model, reasons = one(arrival_time=text)
    assert reasons == set()
    assert model.arrival_time == expected
    assert model.arrival_time.utcoffset() == dt.timedelta(0)


def test_processing_date_may_be_a_datetime_whose_utc_day_is_the_partition():
    model, _ = one(processing_date="2025-01-01T23:30:00-05:00")
    assert model.processing_date == dt.date(2025, 1, 2)
    model, _ = one(processing_date="2025-01-01T06:00:00Z")
    assert model.processing_date == dt.date(2025, 1, 1)
    model, _ = one(processing_date="20250101")  # ISO 8601 basic format
    assert model.processing_date == dt.date(2025, 1, 1)


@pytest.mark.parametrize(
    "field_id",
    ["", "../etc/passwd", "a/b", "a\\b", "..", ".", "tab\there", "nul\x00", " padded", "x" * 129, "é" * 101],
)
def test_hostile_or_unusable_field_ids_are_rejected(field_id):
    model, reasons = one(field_id=field_id)
    assert model is None
    assert reasons == {Reason.INVALID_FIELD_ID}


@pytest.mark.parametrize("field_id", ["F-17", "Feld Süd 3", "农田-7", "a.b_c", "x" * 128])
def test_ordinary_field_ids_are_accepted(field_id):
    model, reasons = one(field_id=field_id)
    assert reasons == set() and model.field_id == field_id


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"arrival_time": "yesterday"}, Reason.INVALID_ARRIVAL_TIME),
        ({"arrival_time": 1735707600}, Reason.INVALID_ARRIVAL_TIME),  # numbers are not ISO 8601
        ({"arrival_time": "1735776000"}, Reason.INVALID_ARRIVAL_TIME),  # nor are numeric strings
        ({"processing_date": "1735776000"}, Reason.INVALID_PROCESSING_DATE),
        ({"arrival_time": None}, Reason.INVALID_ARRIVAL_TIME),
        ({"processing_date": "2025-02-30"}, Reason.INVALID_PROCESSING_DATE),
        ({"processing_date": 20250101}, Reason.INVALID_PROCESSING_DATE),
        ({"data": ["not", "an", "object"]}, Reason.DATA_NOT_OBJECT),
        ({"data": "text"}, Reason.DATA_NOT_OBJECT),
        ({"field_id": 17}, Reason.INVALID_FIELD_ID),
        ({"crs": 4326}, Reason.INVALID_CRS_PROPERTY),
    ],
)
def test_each_bad_property_gets_its_own_reason(changes, reason):
    model, reasons = one(**changes)
    assert model is None
    assert reasons == {reason}


def test_missing_required_properties_are_named():
    models, problems = validate([{"data": {}}])
    assert models == [None]
    assert {r for r, _ in problems[0]} == {
        Reason.INVALID_FIELD_ID,
        Reason.INVALID_ARRIVAL_TIME,
        Reason.INVALID_PROCESSING_DATE,
    }
    assert any("field_id" in message for _, message in problems[0])


def test_a_bad_record_does_not_spoil_its_batch():
    items = [GOOD, GOOD | {"field_id": "a/b"}, "not a dict", GOOD | {"field_id": "F-2"}]
    models, problems = validate(items)
    assert [m.field_id if m else None for m in models] == ["F-1", None, None, "F-2"]
    assert sorted(problems) == [1, 2]
    assert problems[2][0][0] == Reason.NOT_A_FEATURE


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            b'{"field_id":"\\ud800","arrival_time":"2025-01-01T05:00:00Z","processing_date":"2025-01-01"}',
            Reason.INVALID_FIELD_ID,
        ),
        (
            b'{"field_id":"A","arrival_time":"2025-01-01T05:00:00Z","processing_date":"2025-01-01","data":{"x":NaN}}',
            Reason.DATA_NOT_OBJECT,
        ),
        (
            b'{"field_id":"A","arrival_time":"9999-12-31T23:59:59-01:00","processing_date":"2025-01-01"}',
            Reason.INVALID_ARRIVAL_TIME,
        ),
        (
            b'{"field_id":"A","arrival_time":"2025-01-01T05:00:00Z","processing_date":"9999-12-31T23:59:59-01:00"}',
            Reason.INVALID_PROCESSING_DATE,
        ),
    ],
)
def test_what_only_python_json_reads_or_a_column_rule_catches_gets_its_reason(text, reason):
    rows, problems = validate([text])
    assert rows == [None] and {r for r, _ in problems[0]} == {reason}


def test_data_nested_past_pydantic_s_parser_is_judged_on_its_own_rule():
    deep = {"a": 1}
    for _ in range(300):
        deep = {"a": deep}
    rows, problems = validate([GOOD | {"data": deep}])
    assert rows == [None] and problems[0][0][0] == Reason.DATA_NOT_OBJECT


@pytest.mark.parametrize(
    "spelling",
    [
        {"processing_date": "2025-01-01", "field_id": "F-1", "arrival_time": "2025-01-01T07:00:00+02:00"},
        {
            "arrival_time": "2025-01-01T05:00:00.000000Z",
            "data": {"z": [1, {"y": None}], "a": "ü"},
            "field_id": "F-1",
            "extra": [1],
            "processing_date": "2025-01-01",
        },
        {
            "field_id": "F-1",
            "arrival_time": "2025-01-01T00:30:00-04:30",
            "processing_date": "2025-01-01T03:00:00+02:00",
            "crs": "EPSG:4326",
        },
    ],
)
def test_any_spelling_of_a_valid_record_gives_the_same_columns(spelling):
    rows, problems = validate([spelling])
    assert problems == {}
    assert rows[0].field_id == "F-1" and rows[0].arrival_time == dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)
    assert rows[0].processing_date == dt.date(2025, 1, 1)
