"""Late batches: stored late rows are numbered after every input record, in an order that does not depend
on how the store listed the batches, so a merge decides the same whichever way it reads them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from geospatial_pipeline.lake.late_batches import MERGED_SEQ_BASE, merge_seqs, spool_merged, with_seq
from geospatial_pipeline.lake.spool import Spool


def _stored(rows: list[tuple[str, str]]) -> pa.Table:
    """(detected_in, field_id) per stored late row."""
    return pa.table(
        {
            "detected_in": pa.array([dt.date.fromisoformat(d) for d, _ in rows], pa.date32()),
            "field_id": pa.array([f for _, f in rows], pa.string()),
        }
    )


ROWS = [("2025-01-03", "F-2"), ("2025-01-02", "F-9"), ("2025-01-03", "F-1"), ("2025-01-02", "F-1")]


def test_stored_rows_are_numbered_after_the_input_by_detecting_partition_then_field():
    seq = merge_seqs(_stored(ROWS))
    assert (seq >= MERGED_SEQ_BASE).all()
    ranked = [ROWS[k] for k in np.argsort(seq)]
    assert ranked == sorted(ROWS)


def test_the_numbering_does_not_depend_on_the_listing_order():
    forward = dict(zip(ROWS, merge_seqs(_stored(ROWS)).tolist(), strict=True))
    backward = dict(zip(ROWS[::-1], merge_seqs(_stored(ROWS[::-1])).tolist(), strict=True))
    assert forward == backward


def test_only_the_kept_stored_rows_are_spooled_in_number_order(tmp_path):
    merged = _stored(ROWS)
    seq = merge_seqs(merged)
    keep = np.sort(seq[[0, 3]])  # ("2025-01-03", "F-2") and ("2025-01-02", "F-1")
    spool = Spool(tmp_path, "merged", with_seq(merged, seq).schema)
    spool_merged(spool, merged, seq, keep)
    back = pa.concat_tables(spool.batches())
    assert back["seq"].to_pylist() == keep.tolist()
    assert back["field_id"].to_pylist() == ["F-1", "F-2"]
