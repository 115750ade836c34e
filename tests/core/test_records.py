"""Identity and time validation of raw properties (pydantic, whole batches at once)."""

import datetime as dt

import pytest

from geospatial_pipeline.core.records import Reason, validate_properties

GOOD = {"field_id": "F-1", "arrival_time": "2025-01-01T05:00:00Z", "processing_date": "2025-01-01", "data": {"a": 1}}


def one(**changes):
    models, problems = validate_properties([GOOD | changes])
    return models[0], {r for r, _ in problems.get(0, [])}


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
    models, problems = validate_properties([{"data": {}}])
    assert models == [None]
    assert {r for r, _ in problems[0]} == {
        Reason.INVALID_FIELD_ID,
        Reason.INVALID_ARRIVAL_TIME,
        Reason.INVALID_PROCESSING_DATE,
    }
    assert any("field_id" in message for _, message in problems[0])


def test_a_bad_record_does_not_spoil_its_batch():
    items = [GOOD, GOOD | {"field_id": "a/b"}, "not a dict", GOOD | {"field_id": "F-2"}]
    models, problems = validate_properties(items)
    assert [m.field_id if m else None for m in models] == ["F-1", None, None, "F-2"]
    assert sorted(problems) == [1, 2]
    assert problems[2][0][0] == Reason.NOT_A_FEATURE
