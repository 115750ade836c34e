"""Object keys: each builder gives the lake layout of the data contract (README, "The lake"), whether the
date comes as a date or as its ISO text, and late batch keys parse back into their two dates.

Hostile segments and dates are refused: tests/reliability/test_reliability_security.py.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.lake import keys

D = dt.date(2025, 1, 2)


@pytest.mark.parametrize("when", [D, "2025-01-02"])
def test_every_key_follows_the_data_contract(when):
    assert keys.raw_prefix(when) == "raw/2025-01-02/"
    assert keys.fields_key(when) == "fields/date=2025-01-02/fields.parquet"
    assert keys.late_object_key(when, "F-1", ".geojson") == "late_data/2025-01-02/F-1.geojson"
    assert keys.late_batch_key(when, "2025-01-05") == "late_data/_batches/2025-01-02/2025-01-05.parquet"
    assert keys.late_batches_prefix(when) == "late_data/_batches/2025-01-02/"
    assert keys.rejected_key(when) == "rejected/2025-01-02/rejected.geojsonl"
    assert keys.manifest_key(when) == "manifests/2025-01-02.json"
    assert keys.late_batch_key(when, D).startswith(keys.LATE_BATCHES_PREFIX)


@settings(max_examples=200, deadline=None)
@given(st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31)), st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31)))
def test_a_late_batch_key_parses_back_into_its_dates(intended, detected):
    parsed = keys.parse_late_batch_key(keys.late_batch_key(intended, detected))
    assert parsed == (intended.isoformat(), detected.isoformat())


@pytest.mark.parametrize(
    "key",
    [
        "late_data/2025-01-02/F-1.geojson",
        "late_data/_batches/2025-01-02/",
        "late_data/_batches/2025-01-02/2025-01-05.geojson",
        "late_data/_batches/2025-01-02/nested/2025-01-05.parquet",
        "x/late_data/_batches/2025-01-02/2025-01-05.parquet",
        "late_data/_batches/2025-02-30/2025-01-05.parquet",
    ],
)
def test_other_keys_are_not_late_batches(key):
    assert keys.parse_late_batch_key(key) is None


def test_a_segment_may_hold_255_bytes_and_no_more():
    assert keys.segment("é" * 127 + "x") == "é" * 127 + "x"  # 255 bytes of UTF-8
    with pytest.raises(keys.UnsafeKeyError, match="longer than 255 bytes"):
        keys.segment("é" * 128)


def test_a_datetime_is_no_partition_date():
    with pytest.raises(keys.UnsafeKeyError, match="must be dates"):
        keys.fields_key(dt.datetime(2025, 1, 2, 12, 0))


IDS = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)), IDS), min_size=1, max_size=20))
def test_column_keys_are_the_single_keys(rows):
    rows = [(d, i) for d, i in rows if i not in (".", "..") and len(i.encode()) <= 255 - len(".geojson")]
    if not rows:
        return
    dates = pa.array([d for d, _ in rows], pa.date32())
    ids = pa.array([i for _, i in rows], pa.string())
    features, notes = keys.late_object_keys(dates, ids, (".geojson", ".txt"))
    assert features == [keys.late_object_key(d, i, ".geojson") for d, i in rows]
    assert notes == [keys.late_object_key(d, i, ".txt") for d, i in rows]
