"""The classify pass: every raw file of the partition, in listing order, into the two spools and the
quarantine, every record numbered once and accounted for."""

from __future__ import annotations

import pyarrow as pa

from geospatial_pipeline.lake import intake, workers
from geospatial_pipeline.lake.local_store import LocalStore
from tests.lake.awkward_batches import NOW, PARTITION, awkward_batch, lake_of, settings_for


def test_block_numbering_leaves_room_for_every_line(tmp_path, monkeypatch):
    """Records of a block are numbered from the lines before it: no two records share a number, and a
    later file's numbers start past the earlier file's, so input order holds across files."""
    lake = lake_of(tmp_path / "lake", awkward_batch(600))
    settings, limits = settings_for(lake, processes=2)
    monkeypatch.setattr(workers, "BLOCK_BYTES", 5_000)
    work = tmp_path / "work"
    work.mkdir()
    got = intake.classify_inputs(LocalStore(lake), PARTITION, settings.rules(), limits, NOW, work)
    rows = pa.concat_tables(
        [t.select(["seq", "source_key"]) for s in (got.on_time, got.late) for t in s.batches(columns=["source_key"])]
    ).sort_by("seq")
    seqs = rows["seq"].to_numpy()
    assert len(seqs) == got.on_time.rows + got.late.rows > 500
    assert (seqs[1:] > seqs[:-1]).all()
    files = rows["source_key"].to_pylist()
    assert files == sorted(files)  # numbers follow the listing order of the files
    assert got.records == len(seqs) + sum(1 for _ in got.rejected_path.open("rb"))
