"""The partitioned job that publishes one day, shared by the schedule, the sensor and the UI.

Its partitioning is inferred from the selected assets (all share the daily partitions), so the job
itself needs no settings and is loaded from this module as it stands.
"""

from dagster import AssetSelection, define_asset_job

from geospatial_pipeline.defs.assets import FIELDS, LATE, REJECTED

JOB_NAME = "publish_field_partition_job"

publish_field_partition_job = define_asset_job(
    JOB_NAME,
    selection=AssetSelection.assets(FIELDS, LATE, REJECTED),
    description="Validate one day's landing batch and publish its on-time, late and rejected fields",
)
