"""One partition run (publish.run_partition): every record in one outcome, the report and the manifest
agreeing with what is stored, a re-run knowing which late batches it merged before; and the merge of a
partition's own winners with its stored late rows deciding what deduplicating all of them decides.

Crashes, faults and publish order: tests/reliability/.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from geospatial_pipeline.core.dedupe import winners
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.late_batches import MERGED_SEQ_BASE
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import OUTCOMES, PartitionReport, _merge_winners, run_partition
from geospatial_pipeline.settings import PipelineSettings

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


def _run(lake: Path, settings: PipelineSettings, date: str) -> PartitionReport:
    return run_partition(
        LocalStore(lake), dt.date.fromisoformat(date), settings.rules(), target_crs="EPSG:4326", run_id=f"run-{date}"
    )


def test_every_record_ends_in_one_outcome_and_the_manifest_is_the_report(lake_dir, fixture_settings):
    report = _run(lake_dir, fixture_settings, "2025-01-01")
    counts = report.counts
    assert sum(counts[k] for k in OUTCOMES) == counts["input_records"] == 21
    assert json.loads((lake_dir / keys.manifest_key("2025-01-01")).read_text()) == json.loads(
        json.dumps(report.manifest)
    )
    store = LocalStore(lake_dir)
    for output in (report.outputs["fields"], report.outputs["rejected"], *report.outputs["late_batches"]):
        stored = store.head(output["key"])
        assert stored is not None and (stored.etag, stored.size) == (output["etag"], output["size"])
    assert report.manifest["run_id"] == "run-2025-01-01"


def test_a_rerun_knows_which_late_batches_it_merged_before(lake_dir, fixture_settings):
    _run(lake_dir, fixture_settings, "2025-01-02")  # detects F-101, late for 2025-01-01
    first = _run(lake_dir, fixture_settings, "2025-01-01")
    again = _run(lake_dir, fixture_settings, "2025-01-01")
    # Day 1 holds a late copy for itself too: its own batch and day 2's are both new to the first run.
    batches = [keys.late_batch_key("2025-01-01", d) for d in ("2025-01-01", "2025-01-02")]
    assert first.late_merge["new_batches"] == batches and first.late_merge["previous_run_id"] is None
    assert first.late_merge["rows_new"] == first.counts["merged_late"] > 0
    assert again.late_merge["new_batches"] == [] and again.late_merge["rows_new"] == 0
    assert again.late_merge["rows_merged_before"] == first.counts["merged_late"]
    assert again.late_merge["previous_run_id"] == "run-2025-01-01"
    assert [b["merged_before"] for b in again.merged_late_batches] == [True, True]
