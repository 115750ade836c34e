"""Spools hand the classify pass's rows to the publish pass in input order, whoever wrote their parts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geospatial_pipeline.lake.spool import Spool, in_sorted, write_spool_part


def test_a_spool_reads_back_its_own_parts_and_adopted_ones_in_order(tmp_path):
    spool = Spool(tmp_path, "rows", pa.schema([("seq", pa.int64()), ("v", pa.string())]))
    spool.append(pa.table({"seq": [1, 2], "v": ["a", "b"]}))
    adopted = spool.new_part_path()
    write_spool_part(adopted, spool.schema, [pa.table({"seq": [5], "v": ["c"]})])
    spool.adopt(adopted, 1)
    spool.adopt(spool.new_part_path(), 0)  # a worker's block without rows of this kind writes no part
    spool.append(pa.table({"seq": [9], "v": ["d"]}))
    spool.close()
    assert spool.rows == 4
    assert pa.concat_tables(spool.batches()).to_pydict() == {"seq": [1, 2, 5, 9], "v": ["a", "b", "c", "d"]}
    assert pa.concat_tables(spool.batches(seqs=pa.array([2, 9]).to_numpy(), columns=["v"]))["v"].to_pylist() == [
        "b",
        "d",
    ]
    assert [pq.read_metadata(p).num_rows for p in spool.parts] == [2, 1, 1]


def test_in_sorted_is_np_isin_for_a_sorted_set():
    rng = np.random.default_rng(7)
    values = rng.integers(0, 1_000, 5_000)
    sorted_set = np.unique(rng.integers(0, 1_000, 300))
    assert (in_sorted(values, sorted_set) == np.isin(values, sorted_set)).all()
    assert not in_sorted(values, np.array([], dtype=np.int64)).any()
