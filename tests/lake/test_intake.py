"""The classify pass on worker processes: a large line file is cut into blocks that workers split, classify
and spool themselves. Whatever the blocks, the lake must be the one the in-process pass publishes."""

from __future__ import annotations

import dataclasses
import gzip
import signal
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import NOW, PARTITION, _block
from geospatial_pipeline.core import reading
from geospatial_pipeline.lake import intake
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import run_partition
from geospatial_pipeline.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from reliability_support import FIXTURES, diff_states, lake_state  # noqa: E402

MAX_RECORD_BYTES = 4_000


def _awkward_batch(records: int) -> bytes:
    """Generated fields (late, invalid, UTM, re-delivered) and every kind of line a reader must handle."""
    lines = _block((7, 0, 0, records)).splitlines()
    lines[5] = b""  # blank lines
    lines[9] = b"  \t"
    lines[11] = lines[11] + b"\r"  # CRLF
    lines[13] = b"\x1e" + lines[13]  # RFC 8142 record separator
    lines[17] = b'{"type": "Feature", "geometry": '  # malformed JSON
    lines[19] = b'{"type": "Feature", "properties": {"pad": "' + b"x" * (3 * MAX_RECORD_BYTES) + b'"}}'  # over-long
    lines[23] = lines[3]  # the same record twice: the later copy wins
    lines += lines[100:140]  # re-deliveries far apart, in other blocks
    lines.append(
        b'{"type": "Feature", "properties": {"pad": "' + b"y" * (2 * MAX_RECORD_BYTES)
    )  # over-long, at the end
    return b"\n".join(lines)  # the last line has no newline


def _lake(root: Path, batch: bytes) -> Path:
    raw = root / "raw" / PARTITION.isoformat()
    raw.mkdir(parents=True)
    (raw / "a-fields.geojsonl").write_bytes(batch)
    whole = gzip.compress(batch, mtime=0)
    (raw / "b-cut.geojsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])  # ends mid-stream: a read error
    (raw / "c-fields.ndjson").write_bytes((FIXTURES / "raw" / "2025-01-03" / "fields.ndjson").read_bytes())
    (raw / "d-collection.geojson").write_bytes((FIXTURES / "raw" / "2025-01-02" / "fields.geojson").read_bytes())
    return root


def _settings(lake: Path, processes: int):
    settings = load_settings(
        FIXTURES / "config.yaml", local_lake_path=lake, max_record_bytes=MAX_RECORD_BYTES, chunk_records=500
    )
    return settings, dataclasses.replace(settings.limits(), classify_processes=processes)


def _run(lake: Path, processes: int):
    settings, limits = _settings(lake, processes)
    return run_partition(
        LocalStore(lake),
        PARTITION,
        settings.rules(),
        target_crs=settings.target_crs,
        limits=limits,
        config_digest="intake-tests",
        run_id="test",
        now=NOW,
    )


@pytest.mark.parametrize("block_bytes", [3_000, 8 << 20])
def test_worker_blocks_publish_the_lake_of_the_in_process_pass(tmp_path, monkeypatch, block_bytes):
    batch = _awkward_batch(1_500)
    # Reads of the files in this process, both ways: where a damaged file's reads end depends on them.
    monkeypatch.setattr(reading, "READ_BLOCK", 1_000)
    here = _run(_lake(tmp_path / "here", batch), processes=1)
    monkeypatch.setattr(intake, "BLOCK_BYTES", block_bytes)
    spawned = []
    submit = intake.ProcessPoolExecutor.submit
    monkeypatch.setattr(intake.ProcessPoolExecutor, "submit", lambda pool, *a: spawned.append(a) or submit(pool, *a))
    workers = _run(_lake(tmp_path / "workers", batch), processes=2)

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


def test_a_spool_reads_back_its_own_parts_and_adopted_ones_in_order(tmp_path):
    spool = intake.Spool(tmp_path, "rows", pa.schema([("seq", pa.int64()), ("v", pa.string())]))
    spool.append(pa.table({"seq": [1, 2], "v": ["a", "b"]}))
    adopted = spool.new_part_path()
    intake.write_spool_part(adopted, spool.schema, [pa.table({"seq": [5], "v": ["c"]})])
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


def test_block_numbering_leaves_room_for_every_line(tmp_path, monkeypatch):
    """Records of a block are numbered from the lines before it: no two records share a number, and a
    later file's numbers start past the earlier file's, so input order holds across files."""
    lake = _lake(tmp_path / "lake", _awkward_batch(600))
    settings, limits = _settings(lake, processes=2)
    monkeypatch.setattr(intake, "BLOCK_BYTES", 5_000)
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


def test_a_worker_killed_mid_run_leaves_the_run_to_finish_with_the_same_lake(tmp_path, monkeypatch, caplog):
    """SIGKILL, as the OOM killer sends it, to a real worker process once the first block is back and
    others are in flight: the pool breaks, and every block it held is classified here instead."""
    import psutil

    batch = _awkward_batch(600)
    monkeypatch.setattr(reading, "READ_BLOCK", 1_000)
    here = _run(_lake(tmp_path / "here", batch), processes=1)
    monkeypatch.setattr(intake, "BLOCK_BYTES", 20_000)
    killed: list[int] = []
    result = intake._block_result

    def first_then_kill(future, job):
        outcome = result(future, job)
        if not killed:
            workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
            assert workers, "no worker process to kill"
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=30)
            killed.append(workers[0].pid)
        return outcome

    monkeypatch.setattr(intake, "_block_result", first_then_kill)
    with caplog.at_level("WARNING", logger="geospatial_pipeline.lake.intake"):
        workers = _run(_lake(tmp_path / "workers", batch), processes=2)
    assert killed and "classify worker process died" in caplog.text
    assert here.counts == workers.counts
    assert diff_states(lake_state(LocalStore(tmp_path / "here")), lake_state(LocalStore(tmp_path / "workers"))) == []
