"""The one partitioning every asset of the code location shares."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from geospatial_pipeline.settings import PipelineSettings


def daily_partitions(settings: PipelineSettings) -> DailyPartitionsDefinition:
    """UTC calendar days from the configured start; the newest partition is the day that just closed."""
    return DailyPartitionsDefinition(start_date=settings.partition_start_date.isoformat(), timezone="UTC")
