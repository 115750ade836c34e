"""The code location: `dagster dev -m geospatial_pipeline.definitions`, `dg dev`, or the gRPC server in the
cluster (all load `defs` below).

Two halves, merged. What the `defs/` modules define at module level (the job, the schedule) is loaded from
the folder as `dg` projects do, so a new module there is picked up without being listed here. What
depends on the settings (the partitions' start date, the rules and limits of the asset, the sensor's
partitions, the lake) is built in one place, `configured_definitions`, from one `PipelineSettings`:
tests and tools build a whole code location for other settings with `build_definitions(settings)`.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path

from dagster import ComponentTree, Definitions, PreviewWarning

from geospatial_pipeline.defs.assets import build_partition_assets
from geospatial_pipeline.defs.partitions import daily_partitions
from geospatial_pipeline.defs.resources import lake_resource
from geospatial_pipeline.defs.sensors import build_late_data_sensor
from geospatial_pipeline.settings import PipelineSettings, load_settings

DEFS_MODULE = "geospatial_pipeline.defs"
# The folder above the package: the checkout, or site-packages when installed from the wheel. The
# folder loader is handed the module itself, so no pyproject.toml needs to be found at run time.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def configure_logging(settings: PipelineSettings) -> None:
    """`log_level` governs the pipeline's own loggers (Dagster captures them into run logs)."""
    logger = logging.getLogger("geospatial_pipeline")
    logger.setLevel(settings.log_level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def folder_definitions() -> Definitions:
    """Every Dagster object the `defs/` modules define at module level, found as `dg` finds them."""
    tree = ComponentTree.from_module(defs_module=importlib.import_module(DEFS_MODULE), project_root=PROJECT_ROOT)
    with warnings.catch_warnings():
        # Dagster 1.13's folder loader reads a plain module through a function it marks as preview, and
        # warns about its own call for each module; we call nothing in preview.
        warnings.filterwarnings("ignore", "Function `load_definitions_from_module", PreviewWarning)
        return tree.build_defs()


def configured_definitions(settings: PipelineSettings) -> Definitions:
    """The settings-driven half: the partitioned asset, the late-data sensor and the lake resource."""
    return Definitions(
        assets=[build_partition_assets(settings)],
        sensors=[build_late_data_sensor(daily_partitions(settings))],
        resources={"lake": lake_resource(settings)},
    )


def build_definitions(settings: PipelineSettings) -> Definitions:
    """The whole code location for `settings`."""
    configure_logging(settings)
    return Definitions.merge(folder_definitions(), configured_definitions(settings))


defs = build_definitions(load_settings())
