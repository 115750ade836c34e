"""The partitioned job that publishes one day, shared by the schedule, the sensor and the UI.

Its partitioning is inferred from the selected assets (all share the daily partitions)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from geospatial_pipeline.defs.checks import FIELDS, LATE, REJECTED


def partition_job():
    return define_asset_job(
        "publish_field_partition_job",
        selection=AssetSelection.assets(FIELDS, LATE, REJECTED),
        description="Validate one day's landing batch and publish its on-time, late and rejected fields",
    )
