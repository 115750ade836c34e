"""Run each day's partition once the day has closed."""

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from geospatial_pipeline.defs import jobs

# 00:30 UTC: the partition of the day that just ended, after a little slack for in-flight uploads.
daily_schedule = build_schedule_from_partitioned_job(
    jobs.publish_field_partition_job,
    minute_of_hour=30,
    hour_of_day=0,
    default_status=DefaultScheduleStatus.RUNNING,
)
