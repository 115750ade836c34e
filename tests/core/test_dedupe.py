"""The deduplication rule (core/dedupe.py): per partition date and field, the latest arrival wins, ties
to the later record; exact however the keys are chunked, and when field ids' hashes collide."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core import dedupe
from geospatial_pipeline.core.dedupe import winners


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
