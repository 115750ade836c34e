"""The late-arrival rule: on time iff D == P and arrival <= D 00:00 UTC + window."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.lateness import Timing, classify_timing, iso_utc, iso_utc_texts, late_reason

P = dt.date(2025, 1, 1)
DAY = dt.timedelta(days=1)


def timing(intended: str, arrival: str, window=DAY, partition=P) -> Timing:
    out = classify_timing(
        np.array([intended], dtype="datetime64[D]"), np.array([arrival], dtype="datetime64[us]"), partition, window
    )
    return Timing(int(out[0]))


@pytest.mark.parametrize(
    ("intended", "arrival", "expected"),
    [
        ("2025-01-01", "2025-01-01T08:00:00", Timing.ON_TIME),
        ("2025-01-01", "2025-01-02T00:00:00", Timing.ON_TIME),  # the boundary instant itself
        ("2025-01-01", "2025-01-02T00:00:00.000001", Timing.LATE),  # one microsecond after
        ("2024-12-31", "2024-12-31T10:00:00", Timing.LATE),  # an earlier partition's field
        ("2025-01-02", "2025-01-02T00:10:00", Timing.FUTURE),
    ],
)
def test_rule(intended, arrival, expected):
    assert timing(intended, arrival) == expected


def test_window_is_configurable():
    assert timing("2025-01-01", "2025-01-02T05:00:00") == Timing.LATE
    assert timing("2025-01-01", "2025-01-02T05:00:00", window=dt.timedelta(hours=36)) == Timing.ON_TIME
    assert timing("2025-01-01", "2025-01-01T13:00:00", window=dt.timedelta(hours=12)) == Timing.LATE


def test_vectorised_over_many_records():
    intended = np.array(["2025-01-01"] * 3 + ["2024-12-30"], dtype="datetime64[D]")
    arrival = np.array(
        ["2025-01-01T01:00", "2025-01-02T00:00", "2025-01-02T01:00", "2024-12-30T01:00"], dtype="datetime64[us]"
    )
    assert classify_timing(intended, arrival, P, DAY).tolist() == [0, 0, 1, 1]


def test_late_reason_says_why():
    arrival = dt.datetime(2025, 1, 2, 3, tzinfo=dt.UTC)
    assert "after its intended partition 2024-12-31" in late_reason(dt.date(2024, 12, 31), arrival, P, DAY)
    assert "window closed at 2025-01-02T00:00:00Z" in late_reason(P, arrival, P, DAY)


@given(st.lists(st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)), max_size=50))
@settings(max_examples=200, deadline=None)
def test_iso_utc_texts_is_iso_utc_for_a_whole_column(instants):
    micros = np.array([(t - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) for t in instants], dtype=np.int64)
    expected = [iso_utc(t.replace(tzinfo=dt.UTC)) for t in instants]
    assert iso_utc_texts(micros).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.dates(dt.date(2024, 12, 1), dt.date(2025, 1, 2)),
            st.datetimes(dt.datetime(2024, 12, 1), dt.datetime(2025, 2, 1)),
        ),
        max_size=20,
    ),
    window_hours=st.integers(0, 72),
)
def test_late_reasons_of_a_column_read_as_each_rows_own(rows, window_hours):
    """The classifier words a chunk's late rows a column at a time: each row's text as late_reason's."""
    from geospatial_pipeline.core.partition import late_reasons as _late_reasons

    window = dt.timedelta(hours=window_hours)
    intended = np.array([d for d, _ in rows], dtype="datetime64[D]")
    arrival = np.array([a for _, a in rows], dtype="datetime64[us]")
    got = _late_reasons(intended, arrival, P, window).to_pylist()
    assert got == [late_reason(d, a.replace(tzinfo=dt.UTC), P, window) for d, a in rows]
