"""The daily schedule: the partition of the day that just closed, from the configured start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster import build_schedule_context

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.settings import load_settings
from tests.conftest import FIXTURES


# Dagster 1.13's build_schedule_from_partitioned_job calls its own deprecated helper at tick time.
@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition` is deprecated")
def test_daily_schedule_runs_the_day_that_just_closed_from_the_configured_start(tmp_path: Path):
    settings = load_settings(
        FIXTURES / "config.yaml", local_lake_path=tmp_path / "lake", partition_start_date="2025-03-01"
    )
    repo = build_definitions(settings).get_repository_def()
    (schedule,) = repo.schedule_defs
    assert schedule.cron_schedule == "30 0 * * *" and schedule.execution_timezone in (None, "UTC")
    assert schedule.default_status.value == "RUNNING"
    job = repo.get_job(schedule.job_name)
    assert job.partitions_def.get_first_partition_key() == "2025-03-01"

    at = dt.datetime(2025, 3, 5, 0, 30, tzinfo=dt.UTC)
    with build_schedule_context(scheduled_execution_time=at, repository_def=repo) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2025-03-04"


@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition` is deprecated")
def test_the_first_tick_after_the_start_runs_the_first_partition(tmp_path: Path):
    settings = load_settings(local_lake_path=tmp_path / "lake", partition_start_date="2025-03-01")
    repo = build_definitions(settings).get_repository_def()
    (schedule,) = repo.schedule_defs
    at = dt.datetime(2025, 3, 2, 0, 30, tzinfo=dt.UTC)
    with build_schedule_context(scheduled_execution_time=at, repository_def=repo) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2025-03-01"
