"""The late-data sensor, evaluated against a real Dagster instance and a real lake.

Each scenario runs on the local folder and on S3 (moto in-process, with a key prefix). The partitions
are published by real runs (`materialize` on the instance), so the batches and manifests the sensor
reads are the pipeline's own.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
from dagster import DagsterRunStatus, RunsFilter, build_sensor_context, materialize
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.defs.resources import LakeResource
from geospatial_pipeline.defs.sensors import (
    SENSOR_NAME,
    TRIGGER_TAG,
    late_batch_digest,
    late_batches_by_date,
    late_data_run_key,
)
from geospatial_pipeline.lake import keys
from geospatial_pipeline.settings import load_settings
from tests.conftest import use_fake_aws

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
D1, D2, D3 = "2025-01-01", "2025-01-02", "2025-01-03"
BUCKET = "geo-lake-sensor-test"
PREFIX = "lake/v1"


class Lake:
    """One lake (local or S3) with the code location built for it, and the instance runs go to."""

    def __init__(self, defs, instance):
        self.defs = defs
        self.instance = instance
        self.resources = defs.resources
        self.store = self.resources["lake"].store()

    def publish(self, date: str, tags: dict | None = None) -> None:
        result = materialize(
            list(self.defs.assets),
            partition_key=date,
            instance=self.instance,
            resources=self.resources,
            tags=tags or {},
        )
        assert result.success

    def tick(self, cursor: str | None, resources: dict | None = None):
        (sensor,) = [s for s in self.defs.sensors if s.name == SENSOR_NAME]
        with build_sensor_context(
            instance=self.instance, cursor=cursor, resources=resources or self.resources
        ) as context:
            return sensor(context)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path, monkeypatch):
    """The lake's backend; for S3 a moto bucket (in-process, no network) that lives for the whole test."""
    with ExitStack() as stack:
        if request.param == "s3":
            use_fake_aws(monkeypatch)
            stack.enter_context(mock_aws())
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield request.param


def _settings(backend: str, tmp_path: Path):
    if backend == "s3":
        return load_settings(FIXTURES / "config.yaml", s3_bucket=BUCKET, s3_prefix=PREFIX, s3_region="us-east-1")
    return load_settings(FIXTURES / "config.yaml", local_lake_path=tmp_path / "lake")


@pytest.fixture
def empty_lake(backend, tmp_path, instance) -> Lake:
    return Lake(build_definitions(_settings(backend, tmp_path)), instance)


@pytest.fixture
def lake(empty_lake: Lake) -> Lake:
    """The fixture landing batches under raw/, nothing published yet."""
    for path in sorted((FIXTURES / "raw").rglob("*")):
        if path.is_file():
            empty_lake.store.put_file("raw/" + path.relative_to(FIXTURES / "raw").as_posix(), path)
    return empty_lake


def _requested(result) -> dict[str, object]:
    return {r.partition_key: r for r in (result.run_requests or [])}


def test_empty_bucket_requests_nothing(empty_lake: Lake):
    result = empty_lake.tick(None)
    assert not result.run_requests
    assert "no partition received new late data" in str(result.skip_reason)
    assert json.loads(result.cursor) == {}


def test_late_data_its_own_run_merged_requests_nothing(lake: Lake):
    lake.publish(D1)  # day 1 detects one late field for itself and merges it in the same run
    assert _keys(lake.store, keys.LATE_BATCHES_PREFIX) == [keys.late_batch_key(D1, D1)]
    result = lake.tick(None)
    assert not result.run_requests
    assert list(json.loads(result.cursor)) == [D1]


def test_new_late_keys_for_two_dates_request_one_run_each(lake: Lake):
    for date in (D1, D2, D3):
        lake.publish(date)
    listing = late_batches_by_date(lake.store)
    assert {d: sorted(k for k, _ in items) for d, items in listing.items()} == {
        D1: [keys.late_batch_key(D1, d) for d in (D1, D2, D3)],
        D2: [keys.late_batch_key(D2, D3)],
    }

    result = lake.tick(None)

    requested = _requested(result)
    assert list(requested) == [D1, D2]
    for date, request in requested.items():
        digest = late_batch_digest(listing[date])
        assert request.run_key == late_data_run_key(date, digest)
        assert request.tags[TRIGGER_TAG] == "late-data"
        assert request.tags["geospatial_pipeline/late_batches"] == str(len(listing[date]))
    assert json.loads(result.cursor) == {d: late_batch_digest(items) for d, items in listing.items()}


def test_repeated_tick_asks_for_the_same_runs_and_the_next_tick_for_none(lake: Lake):
    lake.publish(D1)
    lake.publish(D2)

    first = lake.tick(None)
    again = lake.tick(None)  # the same tick evaluated a second time (e.g. after a daemon restart)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in again.run_requests]
    assert [r.partition_key for r in first.run_requests] == [D1]
    assert first.cursor == again.cursor

    following = lake.tick(first.cursor)
    assert not following.run_requests
    assert following.cursor == first.cursor


def test_late_key_for_an_already_backfilled_date_requests_it_again(lake: Lake):
    # Day 3 lands before day 2: late fields for days 1 and 2 are found first by day 3's run.
    lake.publish(D1)
    lake.publish(D3)
    tick1 = lake.tick(None)
    first_keys = {d: r.run_key for d, r in _requested(tick1).items()}
    assert list(first_keys) == [D1, D2]
    for request in tick1.run_requests:  # run what the sensor asked for, as the daemon would
        lake.publish(request.partition_key, {**request.tags, "dagster/run_key": request.run_key})
    # Day 2's run (above) was also its daily run: it found F-101 and F-001 late for day 1.
    assert keys.late_batch_key(D1, D2) in _keys(lake.store, keys.late_batches_prefix(D1))

    tick2 = lake.tick(tick1.cursor)
    requested = _requested(tick2)
    assert list(requested) == [D1]  # day 2's late data did not change since its backfill
    assert requested[D1].run_key != first_keys[D1]
    # The decision does not depend on the cursor alone: from scratch, the manifests say the same.
    assert list(_requested(lake.tick(None))) == [D1]

    lake.publish(D1, {**requested[D1].tags, "dagster/run_key": requested[D1].run_key})
    assert not lake.tick(tick2.cursor).run_requests
    assert not lake.tick(None).run_requests


class CountingLakeResource(LakeResource):
    """The production lake resource, counting the LIST requests its S3 clients send."""

    def s3_client(self):
        client = super().s3_client()
        client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: LIST_CALLS.append(1))
        return client


LIST_CALLS: list[int] = []


def test_more_than_1000_late_batches_are_all_seen(empty_lake: Lake, backend: str):
    dates = [f"2025-02-{day:02d}" for day in range(1, 12)]  # 11 dates x 100 detecting runs = 1,100 keys
    for date in dates:
        for k in range(100):
            detected = f"2025-{3 + k // 28:02d}-{1 + k % 28:02d}"
            empty_lake.store.put_bytes(keys.late_batch_key(date, detected), f"{date} {detected}".encode())
    resources = dict(empty_lake.resources)
    if backend == "s3":
        resources["lake"] = CountingLakeResource(s3=S3Resource(region_name="us-east-1"), bucket=BUCKET, prefix=PREFIX)
    LIST_CALLS.clear()

    result = empty_lake.tick(None, resources)

    requested = _requested(result)
    assert list(requested) == dates  # the last date's keys sort after the first 1,000 (second page)
    assert all(r.tags["geospatial_pipeline/late_batches"] == "100" for r in requested.values())
    assert len(json.loads(result.cursor)) == 11
    if backend == "s3":
        assert len(LIST_CALLS) == 2  # 1,100 keys at 1,000 per page
    assert not empty_lake.tick(result.cursor, resources).run_requests


def _keys(store, prefix: str) -> list[str]:
    return [info.key for info in store.list(prefix)]


# --- the daemon's path: a tick evaluated twice launches one run -------------------------------------


def test_tick_evaluated_twice_launches_one_run(lake_dir: Path, tmp_path: Path, instance):
    """Through Dagster's own sensor daemon iteration (private test API, pinned Dagster 1.13)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.scheduler.instigation import SensorInstigatorData, TickStatus
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon import get_default_daemon_logger
    from dagster._daemon.sensor import execute_sensor_iteration

    settings = load_settings(FIXTURES / "config.yaml", local_lake_path=lake_dir)
    lake = Lake(build_definitions(settings), instance)
    lake.publish(D1)
    lake.publish(D2)
    expected_key = late_data_run_key(D1, late_batch_digest(late_batches_by_date(lake.store)[D1]))

    location = tmp_path / "location.py"
    location.write_text(
        "from geospatial_pipeline.definitions import build_definitions\n"
        "from geospatial_pipeline.settings import load_settings\n"
        f"settings = load_settings({str(FIXTURES / 'config.yaml')!r}, local_lake_path={str(lake_dir)!r})\n"
        "defs = build_definitions(settings)\n"
    )
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(location), attribute="defs", working_directory=str(tmp_path)),
        location_name="geospatial_pipeline",
    )
    logger = get_default_daemon_logger("SensorDaemon")
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget([origin]), instance) as workspace:
        list(execute_sensor_iteration(workspace, logger, None, None))
        runs = instance.get_runs(filters=RunsFilter(tags={"dagster/run_key": expected_key}))
        assert len(runs) == 1
        assert runs[0].tags["dagster/partition"] == D1
        assert runs[0].status == DagsterRunStatus.QUEUED  # no queue daemon here: the run stays queued

        # The daemon restarts before it stored the tick's cursor: the same tick is evaluated again.
        (state,) = [s for s in instance.all_instigator_state() if s.name == SENSOR_NAME]
        data = state.instigator_data
        instance.update_instigator_state(
            state.with_data(
                SensorInstigatorData(min_interval=data.min_interval, cursor=None, sensor_type=data.sensor_type)
            )
        )
        list(execute_sensor_iteration(workspace, logger, None, None))

        assert len(instance.get_runs(filters=RunsFilter(tags={"dagster/run_key": expected_key}))) == 1
        assert len(instance.get_runs(filters=RunsFilter(tags={TRIGGER_TAG: "late-data"}))) == 1
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
        assert len(ticks) == 2
        latest, first = ticks  # newest first
        assert first.status == TickStatus.SUCCESS and first.run_keys == [expected_key]
        # The second evaluation asked for the same run key; Dagster found its run and launched nothing.
        assert latest.status == TickStatus.SKIPPED
        assert latest.run_keys == [expected_key] and latest.run_ids == []
        assert first.run_ids == [runs[0].run_id]
