"""The classify pass on worker processes: a large line file is cut into blocks that workers split, classify
and spool themselves. Whatever the blocks, and even when a worker dies, the lake must be the one the
in-process pass publishes."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from geospatial_pipeline.core import reading
from geospatial_pipeline.lake import workers as workers_module
from geospatial_pipeline.lake.local_store import LocalStore
from tests.lake.awkward_batches import PARTITION, awkward_batch, lake_of, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from reliability_support import diff_states, lake_state  # noqa: E402


@pytest.mark.parametrize("block_bytes", [3_000, 8 << 20])
def test_worker_blocks_publish_the_lake_of_the_in_process_pass(tmp_path, monkeypatch, block_bytes):
    batch = awkward_batch(1_500)
    # Reads of the files in this process, both ways: where a damaged file's reads end depends on them.
    monkeypatch.setattr(reading, "READ_BLOCK", 1_000)
    here = run(lake_of(tmp_path / "here", batch), processes=1)
    monkeypatch.setattr(workers_module, "BLOCK_BYTES", block_bytes)
    spawned = []
    submit = workers_module.ProcessPoolExecutor.submit
    monkeypatch.setattr(
        workers_module.ProcessPoolExecutor, "submit", lambda pool, *a: spawned.append(a) or submit(pool, *a)
    )
    workers = run(lake_of(tmp_path / "workers", batch), processes=2)

    # The files of lines went to the workers, block by block; the FeatureCollection is read here.
    blocks = [job.block for _, job in spawned]
    assert len(blocks) >= (2 if block_bytes > len(batch) else len(batch) // block_bytes)
    assert {job.key for _, job in spawned} == {
        f"raw/{PARTITION}/a-fields.geojsonl",
        f"raw/{PARTITION}/b-cut.geojsonl.gz",
        f"raw/{PARTITION}/c-fields.ndjson",
    }
    assert [b.error for b in blocks if b.error] == ["Compressed file ended before the end-of-stream marker was reached"]
    assert here.counts == workers.counts
    assert here.reasons == workers.reasons
    assert all(here.counts[k] > 0 for k in ("on_time", "late", "rejected", "superseded"))
    assert here.reasons["record_too_large"] == 3  # two in the whole file, one in what the damaged one holds
    assert here.reasons["file_unreadable"] == 1 and here.reasons["malformed_json"] == 2
    assert diff_states(lake_state(LocalStore(tmp_path / "here")), lake_state(LocalStore(tmp_path / "workers"))) == []


def test_a_worker_killed_mid_run_leaves_the_run_to_finish_with_the_same_lake(tmp_path, monkeypatch, caplog):
    """SIGKILL, as the OOM killer sends it, to a real worker process once the first block is back and
    others are in flight: the pool breaks, and every block it held is classified here instead. A worker
    reading the task queue, if one is, is the one killed: it holds the queue's lock, the survivor then waits
    on it for ever, and Python 3.11's executor would join that survivor for ever (the run stops it). Most
    kills land on a busy worker, so the hang is not reproduced every time; a run that does not end fails
    here after two minutes instead of hanging the suite (a clean-clone CI run once hung in it)."""
    import psutil

    batch = awkward_batch(600)
    monkeypatch.setattr(reading, "READ_BLOCK", 1_000)
    here = run(lake_of(tmp_path / "here", batch), processes=1)
    monkeypatch.setattr(workers_module, "BLOCK_BYTES", 20_000)
    killed: list[int] = []
    result = workers_module._block_result

    def first_then_kill(future, job):
        outcome = result(future, job)
        if not killed:
            workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
            assert workers, "no worker process to kill"
            time.sleep(0.5)  # the idle workers settle: one reads the queue (in a pipe), the others wait on its lock
            reading = [p for p in workers if "pipe" in Path(f"/proc/{p.pid}/wchan").read_text()]
            victim = (reading or workers)[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            killed.append(victim.pid)
        return outcome

    monkeypatch.setattr(workers_module, "_block_result", first_then_kill)
    finished: list = []
    with caplog.at_level("WARNING", logger="geospatial_pipeline.lake.workers"):
        runner = threading.Thread(
            target=lambda: finished.append(run(lake_of(tmp_path / "workers", batch), 2)), daemon=True
        )
        runner.start()
        runner.join(timeout=120)
    assert finished, "the run did not end within 2 minutes of a worker's death"
    workers = finished[0]
    assert killed and "classify worker process died" in caplog.text
    assert here.counts == workers.counts
    assert diff_states(lake_state(LocalStore(tmp_path / "here")), lake_state(LocalStore(tmp_path / "workers"))) == []
