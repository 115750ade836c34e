"""The code location: `dagster dev -m geospatial_pipeline.definitions` or the gRPC server in the cluster."""

from __future__ import annotations

import logging

from dagster import Definitions

from geospatial_pipeline.defs.assets import build_partition_assets
from geospatial_pipeline.defs.jobs import partition_job
from geospatial_pipeline.defs.partitions import daily_partitions
from geospatial_pipeline.defs.resources import lake_resource
from geospatial_pipeline.defs.schedules import daily_schedule
from geospatial_pipeline.defs.sensors import build_late_data_sensor
from geospatial_pipeline.settings import PipelineSettings, load_settings


def configure_logging(settings: PipelineSettings) -> None:
    """`log_level` governs the pipeline's own loggers (Dagster captures them into run logs)."""
    logger = logging.getLogger("geospatial_pipeline")
    logger.setLevel(settings.log_level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def build_definitions(settings: PipelineSettings) -> Definitions:
    configure_logging(settings)
    partitions = daily_partitions(settings)
    job = partition_job()
    return Definitions(
        assets=[build_partition_assets(settings)],
        jobs=[job],
        schedules=[daily_schedule(job)],
        sensors=[build_late_data_sensor(job, partitions)],
        resources={"lake": lake_resource(settings)},
    )


defs = build_definitions(load_settings())
