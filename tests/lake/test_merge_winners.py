"""The merge of a partition's own on-time winners with the late rows stored for it decides exactly what
deduplicating all of them together decides (publish._merge_winners against partition.winners)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.dedupe import winners
from geospatial_pipeline.lake.publish import MERGED_SEQ_BASE, _merge_winners

DAYS = [dt.date(2025, 1, 2), dt.date(2025, 1, 3)]
IDS = [f"F-{k}" for k in range(12)]


def _keys(rows: list[tuple[dt.date, str, int]], first_seq: int) -> pa.Table:
    return pa.table(
        {
            "processing_date": pa.array([r[0] for r in rows], pa.date32()),
            "field_id": pa.array([r[1] for r in rows], pa.string()),
            "arrival_time": pa.array([r[2] for r in rows], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "seq": pa.array(np.arange(first_seq, first_seq + len(rows)), pa.int64()),
        }
    )


ROW = st.tuples(st.sampled_from(DAYS), st.sampled_from(IDS), st.integers(0, 5))


@settings(max_examples=400, deadline=None)
@given(own=st.lists(ROW, max_size=15), stored=st.lists(ROW, max_size=15))
def test_merging_decides_as_deduplicating_everything(own, stored):
    # Own rows are the partition's winners already: one per (date, field id).
    own = list({(d, i): (d, i, a) for d, i, a in own}.values())
    own_keys, merged = _keys(own, 0), _keys(stored, MERGED_SEQ_BASE)
    expected = winners(pa.concat_tables([own_keys, merged]))
    got = _merge_winners(own_keys, merged)
    assert got.tolist() == expected.tolist()
    assert (np.diff(got) > 0).all()
