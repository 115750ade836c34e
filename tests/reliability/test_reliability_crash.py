"""Crashes and re-runs: a run killed at any write step leaves a lake a reader can trust, and re-running the
partition converges on exactly what a clean run publishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from reliability_support import (
    CRASH_POINTS,
    FIXTURE_DATES,
    REPO,
    CrashingStore,
    InjectedCrash,
    assert_reader_view_consistent,
    diff_states,
    lake_state,
    manifest_of,
    manifest_references,
    run,
    seed_raw,
)

from geospatial_pipeline.lake import keys, late_batches, late_objects, publish
from geospatial_pipeline.lake.local_store import LOCAL_TMP_DIR, LocalStore
from geospatial_pipeline.lake.publish import ConservationError
from geospatial_pipeline.lake.store import StagedWriter

CHILD = Path(__file__).with_name("crash_child.py")


@pytest.fixture
def clean_state(tmp_path, settings_for):
    """The lake after a clean run of every fixture partition, in order."""
    lake = seed_raw(tmp_path / "clean")
    store = LocalStore(lake)
    settings = settings_for()
    for date in FIXTURE_DATES:
        run(store, date, settings)
    return lake_state(store)


def _files_on_disk(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_first_run_killed_at_each_write_step_then_rerun_equals_clean_run(point, tmp_path, settings_for, clean_state):
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    store = LocalStore(lake)
    for date in FIXTURE_DATES[:2]:
        run(store, date, settings)
    crashing = CrashingStore(lake, CRASH_POINTS[point])

    # 2025-01-03 delivers late fields for two earlier dates, so it writes at every step.
    with pytest.raises(InjectedCrash):
        run(crashing, "2025-01-03", settings)

    assert crashing.dead, f"the run never reached {point}"
    assert manifest_of(store, "2025-01-03") is None, "a crashed first run must not leave a manifest"
    assert assert_reader_view_consistent(store) > 0

    run(store, "2025-01-03", settings)
    assert diff_states(lake_state(store), clean_state) == []
    assert not any(p.startswith(LOCAL_TMP_DIR + "/") for p in _files_on_disk(lake))


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_rerun_of_a_published_partition_killed_at_each_step_keeps_the_old_manifest_valid(point, tmp_path, settings_for):
    """Same inputs: while the re-run is dead, the old manifest and every object it names are intact."""
    settings = settings_for()
    steps = [*FIXTURE_DATES, "2025-01-01"]  # the second 01 run merges the late fields 02 and 03 found
    reference = LocalStore(seed_raw(tmp_path / "reference"))
    for date in steps:
        run(reference, date, settings)
    lake = seed_raw(tmp_path / "lake")
    store = LocalStore(lake)
    for date in steps:
        run(store, date, settings)
    old_manifest = store.get_bytes(keys.manifest_key("2025-01-01"))
    crashing = CrashingStore(lake, CRASH_POINTS[point])

    # 2025-01-01 publishes a late field for itself, so its re-run also passes every write step.
    with pytest.raises(InjectedCrash):
        run(crashing, "2025-01-01", settings)

    assert crashing.dead, f"the run never reached {point}"
    assert store.get_bytes(keys.manifest_key("2025-01-01")) == old_manifest
    for key, etag in manifest_references(json.loads(old_manifest)):
        assert store.head(key).etag == etag, f"the old manifest's {key} changed under it"
    assert_reader_view_consistent(store)

    run(store, "2025-01-01", settings)
    assert diff_states(lake_state(store), lake_state(reference)) == []


def test_rerun_with_new_late_data_killed_before_its_manifest_leaves_no_dangling_reference(tmp_path, settings_for):
    """New late data for 01: its GeoParquet is replaced in place before the manifest is; the old manifest
    still names only objects that exist, and the finished re-run brings the two back in step."""
    settings = settings_for()
    reference = LocalStore(seed_raw(tmp_path / "reference"))
    for date in [*FIXTURE_DATES, "2025-01-01"]:
        run(reference, date, settings)
    lake = seed_raw(tmp_path / "lake")
    store = LocalStore(lake)
    for date in FIXTURE_DATES:
        run(store, date, settings)
    old_manifest = json.loads(store.get_bytes(keys.manifest_key("2025-01-01")))

    with pytest.raises(InjectedCrash):
        run(CrashingStore(lake, CRASH_POINTS["before_manifest"]), "2025-01-01", settings)

    assert json.loads(store.get_bytes(keys.manifest_key("2025-01-01"))) == old_manifest
    assert all(store.head(key) is not None for key, _ in manifest_references(old_manifest))
    run(store, "2025-01-01", settings)
    assert diff_states(lake_state(store), lake_state(reference)) == []
    assert_reader_view_consistent(store)


@pytest.mark.parametrize(
    "point", ["mid_geoparquet_rename", "mid_late_object_rename", "after_some_late_objects", "before_manifest"]
)
def test_process_killed_with_sigkill_then_rerun_equals_clean_run(point, tmp_path, settings_for, clean_state):
    """A real SIGKILL in a child process: no finally blocks run, temporary files stay behind."""
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    store = LocalStore(lake)
    for date in FIXTURE_DATES[:2]:
        run(store, date, settings)

    scratch = tmp_path / "scratch"  # the child's temp folder: what a SIGKILL leaves there stays in tmp_path
    scratch.mkdir()
    child = subprocess.run(
        [sys.executable, str(CHILD), str(lake), "2025-01-03", point],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent), "TMPDIR": str(scratch)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]

    assert manifest_of(store, "2025-01-03") is None
    if point == "mid_late_object_rename":
        # A whole file was written to a temporary name and never renamed: no reader can see it.
        assert any(p.startswith(LOCAL_TMP_DIR + "/") for p in _files_on_disk(lake))
    if point == "mid_geoparquet_rename":
        # The finished file waits in the run's scratch folder; the rename that would publish it never ran.
        assert store.head(keys.fields_key("2025-01-03")) is None
        assert any(b"geo" in (pq.read_schema(f).metadata or {}) for f in _whole_parquet(scratch, "partition-*/tmp*"))
    assert not any(info.key.startswith(LOCAL_TMP_DIR) for info in store.list(""))
    assert_reader_view_consistent(store)

    run(store, "2025-01-03", settings)
    assert diff_states(lake_state(store), clean_state) == []


def _whole_parquet(folder: Path, pattern: str) -> list[Path]:
    """Parquet files under `folder` that were finished (a file cut off mid-write has no footer)."""
    whole = []
    for path in folder.glob(pattern + ".parquet"):
        try:
            pq.read_schema(path)
        except (OSError, ValueError):
            continue
        whole.append(path)
    return whole


def test_rerunning_every_partition_in_any_order_is_byte_identical(tmp_path, settings_for):
    """Once every partition has seen the late data of the others (one pass, then a second), re-runs with
    the same inputs change no byte of any GeoParquet, late object, batch or quarantine file."""
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    store = LocalStore(lake)
    for date in FIXTURE_DATES * 2:
        run(store, date, settings)
    first = {info.key: store.get_bytes(info.key) for info in store.list("")}
    first_state = lake_state(store)

    for date in [*reversed(FIXTURE_DATES), "2025-01-02", "2025-01-02"]:
        run(store, date, settings)

    again = {info.key: store.get_bytes(info.key) for info in store.list("")}
    assert sorted(again) == sorted(first)
    for key in first:
        if key.startswith("manifests/"):
            continue  # run metadata (run id, completion time) differs; the data is compared below
        assert again[key] == first[key], f"{key} changed on a re-run with the same inputs"
    assert len([k for k in first if k.startswith("fields/")]) == 3
    assert len([k for k in first if k.startswith("late_data/") and k.endswith(".geojson")]) == 5
    assert diff_states(lake_state(store), first_state) == []


def _late_feature(field_id: str, intended: str, arrival: str, marker: str) -> str:
    ring = [[10.0, 50.0], [10.01, 50.0], [10.01, 50.01], [10.0, 50.01], [10.0, 50.0]]
    return json.dumps(
        {
            "type": "Feature",
            "properties": {
                "field_id": field_id,
                "processing_date": intended,
                "arrival_time": arrival,
                "data": {"marker": marker},
            },
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
    )


def test_late_objects_do_not_depend_on_which_partition_ran_last(tmp_path, settings_for):
    """Two partitions detect the same field late for the same date: the later arrival owns
    late_data/{D}/{id}.*, whichever partition runs (or re-runs) last."""

    def lake_with_two_late_copies(root: Path) -> LocalStore:
        for date, arrival, marker in [
            ("2025-01-02", "2025-01-02T20:00:00Z", "later-arrival"),
            ("2025-01-03", "2025-01-02T06:00:00Z", "earlier-arrival"),
        ]:
            (root / "raw" / date).mkdir(parents=True)
            line = _late_feature("X-1", "2025-01-01", arrival, marker)
            (root / "raw" / date / "late.geojsonl").write_text(line + "\n")
        return LocalStore(root)

    forward = lake_with_two_late_copies(tmp_path / "forward")
    backward = lake_with_two_late_copies(tmp_path / "backward")
    settings = settings_for()
    for date in ["2025-01-02", "2025-01-03", "2025-01-01"]:
        run(forward, date, settings)
    for date in ["2025-01-03", "2025-01-02", "2025-01-01", "2025-01-03"]:
        run(backward, date, settings)

    key = keys.late_object_key("2025-01-01", "X-1", ".geojson")
    assert orjson.loads(forward.get_bytes(key))["properties"]["data"] == {"marker": "later-arrival"}
    assert diff_states(lake_state(forward), lake_state(backward)) == []
    published = pq.read_table(forward.open(keys.fields_key("2025-01-01")))
    assert published["data"].to_pylist() == ['{"marker":"later-arrival"}']


def test_publish_order_each_batch_after_its_late_objects_and_the_manifest_once_and_last(tmp_path, settings_for):
    """The two lanes interleave freely (late objects and batches beside quarantine and GeoParquet); what a
    reader relies on is fixed: a date's batch after all of its per-field objects, the manifest last."""
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)
    recording = CrashingStore(lake, lambda key, done: False)
    report = run(recording, "2025-01-03", settings)

    written = recording.written
    assert written[-1] == keys.manifest_key("2025-01-03")
    assert written.count(keys.manifest_key("2025-01-03")) == 1
    assert written.count(keys.rejected_key("2025-01-03")) == written.count(keys.fields_key("2025-01-03")) == 1
    late = [k for k in written if k.startswith("late_data/")]
    assert len(late) == len(written) - 3
    batches = [k for k in late if k.startswith(keys.LATE_BATCHES_PREFIX)]
    assert len(batches) == 2 and len(late) - len(batches) == 2 * report.counts["late"] == 4
    for batch in batches:
        intended = keys.parse_late_batch_key(batch)[0]
        objects = [i for i, k in enumerate(written) if k.startswith(f"late_data/{intended}/")]
        assert objects and max(objects) < written.index(batch)


def test_the_late_lane_runs_beside_the_geoparquet_build(tmp_path, settings_for, monkeypatch):
    """Late objects are still being written while the partition's GeoParquet is: the overlap is real."""
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)
    geoparquet_started, objects_seen_started = threading.Event(), threading.Event()
    real_write_late_objects, real_grouped = late_objects.write_late_objects, publish.write_grouped_geoparquet

    def slow_late_objects(store, table, concurrency):
        objects_seen_started.set()
        assert geoparquet_started.wait(10), "the GeoParquet build waited for the late objects"
        return real_write_late_objects(store, table, concurrency)

    def flagged_grouped(*args, **kwargs):
        geoparquet_started.set()
        return real_grouped(*args, **kwargs)

    monkeypatch.setattr(late_objects, "write_late_objects", slow_late_objects)
    monkeypatch.setattr(publish, "write_grouped_geoparquet", flagged_grouped)
    report = run(LocalStore(lake), "2025-01-03", settings)
    assert objects_seen_started.is_set() and report.outputs["late_objects"] == 4


def test_late_batches_wait_for_every_late_object_of_a_slow_lane(tmp_path, settings_for, monkeypatch):
    """The batches are built beside the late objects but published only after the last of them, even when
    the objects take far longer than everything else (a slow disk or object store)."""
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)
    real_write_late_objects, built = late_objects.write_late_objects, threading.Event()
    real_build = publish.build_late_batches

    def slow_late_objects(store, table, concurrency):
        assert built.wait(10), "the late batches were not built while the objects were written"
        return real_write_late_objects(store, table, concurrency)

    def flagged_build(*args):
        staged = real_build(*args)
        built.set()
        return staged

    monkeypatch.setattr(late_objects, "write_late_objects", slow_late_objects)
    monkeypatch.setattr(publish, "build_late_batches", flagged_build)
    recording = CrashingStore(lake, lambda key, done: False)
    run(recording, "2025-01-03", settings)
    written = recording.written
    objects = [i for i, k in enumerate(written) if k.startswith("late_data/") and "/_batches/" not in k]
    batches = [i for i, k in enumerate(written) if k.startswith(keys.LATE_BATCHES_PREFIX)]
    assert len(objects) == 4 and len(batches) == 2
    assert max(objects) < min(batches) and written[-1] == keys.manifest_key("2025-01-03")


def test_a_late_batch_short_of_its_count_publishes_no_batch_and_no_manifest(tmp_path, settings_for, monkeypatch):
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)
    real_rows_of = late_batches.late_rows_of

    def rows_losing_one_for_the_batches(late, keep, intended, columns=None):
        for rows in real_rows_of(late, keep, intended, columns):
            lose = columns is None and rows.num_rows  # the batches read every column, the late objects a few
            yield rows.slice(0, rows.num_rows - 1) if lose else rows

    monkeypatch.setattr(late_batches, "late_rows_of", rows_losing_one_for_the_batches)
    with pytest.raises(ConservationError, match="late batch"):
        run(LocalStore(lake), "2025-01-03", settings)
    store = LocalStore(lake)
    assert manifest_of(store, "2025-01-03") is None
    assert not [i.key for i in store.list(keys.LATE_BATCHES_PREFIX) if i.key.endswith("/2025-01-03.parquet")]


@pytest.mark.parametrize("pooled", [False, True])
def test_the_caller_writes_the_late_objects_left_once_its_own_work_is_done(pooled, tmp_path, settings_for, monkeypatch):
    """Local folder: the GeoParquet lane, done, takes late row groups the late-object lane has not reached;
    a pooled backend keeps them on the lane. Either way the same objects as a run with one writer."""
    settings = settings_for()
    lakes = {}
    for name in ("one writer", "shared"):
        lake = seed_raw(tmp_path / name)
        for date in FIXTURE_DATES[:2]:
            run(LocalStore(lake), date, settings)
        lakes[name] = lake
    real_rows_of, real_write = late_batches.late_rows_of, late_objects.write_late_objects
    real_build = publish.build_late_batches
    writers, caller_wrote, built = [], threading.Event(), threading.Event()

    def one_row_at_a_time(late, keep, intended, columns=None):
        for rows in real_rows_of(late, keep, intended, columns):
            yield from ([rows] if columns is None else (rows.slice(k, 1) for k in range(rows.num_rows)))

    def recording_write(store, table, concurrency):
        writers.append(threading.current_thread().name)
        if threading.current_thread().name != "late-objects":
            caller_wrote.set()
        elif not pooled:  # the lane holds its first row group until the caller has written one
            assert caller_wrote.wait(10), "the caller never took a late row group"
        elif len(writers) == 1:  # ... or, pooled, until the caller has had time to take one it should not
            assert built.wait(10)
            time.sleep(0.3)
        return real_write(store, table, concurrency)

    def flagged_build(*args):
        staged = real_build(*args)
        built.set()
        return staged

    run(LocalStore(lakes["one writer"]), "2025-01-03", settings)
    monkeypatch.setattr(late_objects, "late_rows_of", one_row_at_a_time)
    monkeypatch.setattr(late_objects, "write_late_objects", recording_write)
    monkeypatch.setattr(publish, "build_late_batches", flagged_build)
    store = LocalStore(lakes["shared"])
    monkeypatch.setattr(store, "pooled_put_many", pooled)
    report = run(store, "2025-01-03", settings)

    assert report.outputs["late_objects"] == 4 and len(writers) == 2
    assert ("late-objects" in writers) and (set(writers) == {"late-objects"}) == pooled
    objects = [
        {i.key: i.etag for i in LocalStore(lake).list("late_data/") if not i.key.startswith(keys.LATE_BATCHES_PREFIX)}
        for lake in lakes.values()
    ]
    assert objects[0] == objects[1] and len(objects[0]) > 4


def test_staged_late_folders_give_the_lake_of_one_put_per_object(tmp_path, settings_for, monkeypatch):
    """New late_data/{date}/ folders are staged and renamed into place whole; the lake is the same as with
    an ordinary put per object, and no staging folder stays behind."""
    settings = settings_for()
    staged, plain = LocalStore(seed_raw(tmp_path / "staged")), LocalStore(seed_raw(tmp_path / "plain"))
    renamed = []
    real_rename = os.rename

    def recording_rename(src, dst, *args, **kwargs):
        renamed.append(str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", recording_rename)
    monkeypatch.setattr(plain, "staged_writer", lambda: StagedWriter(plain))
    for date in FIXTURE_DATES:
        run(staged, date, settings)
        run(plain, date, settings)
    assert [d for d in renamed if "/late_data/" in d]  # some folder was new when its first late objects came
    assert diff_states(lake_state(staged), lake_state(plain)) == []
    assert not any(p.startswith(LOCAL_TMP_DIR + "/") for p in _files_on_disk(staged.root))


def test_a_failing_geoparquet_lane_stops_the_late_objects_after_their_row_group(tmp_path, settings_for, monkeypatch):
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)
    real_rows_of, real_write = late_batches.late_rows_of, late_objects.write_late_objects
    failed, writes = threading.Event(), []

    def one_row_at_a_time(late, keep, intended, columns=None):
        for rows in real_rows_of(late, keep, intended, columns):
            yield from ([rows] if columns is None else (rows.slice(k, 1) for k in range(rows.num_rows)))

    def slow_write(store, table, concurrency):
        writes.append(table.num_rows)
        assert failed.wait(10)  # still writing its first row group when the other lane fails
        return real_write(store, table, concurrency)

    def broken_geoparquet(*args, **kwargs):
        failed.set()
        raise OSError("disk full")

    monkeypatch.setattr(late_objects, "late_rows_of", one_row_at_a_time)
    monkeypatch.setattr(late_objects, "write_late_objects", slow_write)
    monkeypatch.setattr(publish, "write_grouped_geoparquet", broken_geoparquet)
    with pytest.raises(OSError, match="disk full"):
        run(LocalStore(lake), "2025-01-03", settings)
    assert writes == [1]  # the row group in hand, then no other
    assert manifest_of(LocalStore(lake), "2025-01-03") is None


def test_a_failing_late_lane_fails_the_run_without_a_manifest(tmp_path, settings_for, monkeypatch):
    lake = seed_raw(tmp_path / "lake")
    settings = settings_for()
    for date in FIXTURE_DATES[:2]:
        run(LocalStore(lake), date, settings)

    def broken(store, table, concurrency):
        raise OSError("disk full")

    monkeypatch.setattr(late_objects, "write_late_objects", broken)
    with pytest.raises(OSError, match="disk full"):
        run(LocalStore(lake), "2025-01-03", settings)
    assert manifest_of(LocalStore(lake), "2025-01-03") is None


def test_counts_that_do_not_add_up_publish_nothing(tmp_path, settings_for, monkeypatch):
    lake = seed_raw(tmp_path / "lake")
    real_winners = publish.winners

    def duplicating_winners(table):
        keep = real_winners(table)
        return np.concatenate([keep, keep[:1]])  # one record counted twice

    monkeypatch.setattr(publish, "winners", duplicating_winners)
    with pytest.raises(ConservationError, match="do not add up"):
        run(LocalStore(lake), "2025-01-01", settings_for())
    assert all(p.startswith("raw/") for p in _files_on_disk(lake))
