"""Run each day's partition once the day has closed."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job


def daily_schedule(job):
    # 00:30 UTC: the partition of the day that just ended, after a little slack for in-flight uploads.
    return build_schedule_from_partitioned_job(
        job, minute_of_hour=30, hour_of_day=0, default_status=DefaultScheduleStatus.RUNNING
    )
