"""What a code location defines, as plain JSON for review: `python -m tests.definitions_snapshot` prints it
for `geospatial_pipeline.definitions:defs`, loaded as Dagster loads it (the module's `defs` attribute).

tests/test_definitions.py compares it with tests/snapshots/definitions.json, so a change to the graph
(an asset, a check, the partitions, the job, schedule or sensor, a resource's config) shows in review.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from dagster import Definitions, PartitionsDefinition, TimeWindowPartitionsDefinition

CODE_LOCATION = "geospatial_pipeline.definitions"


def describe_partitions(partitions: PartitionsDefinition[Any] | None) -> dict[str, Any] | None:
    if partitions is None:
        return None
    described: dict[str, Any] = {"type": type(partitions).__name__}
    if isinstance(partitions, TimeWindowPartitionsDefinition):
        described |= {
            "start": partitions.start.isoformat(),
            "end": partitions.end.isoformat() if partitions.end else None,
            "timezone": partitions.timezone,
            "cron_schedule": partitions.cron_schedule,
            "fmt": partitions.fmt,
            "end_offset": partitions.end_offset,
        }
    return described


def _partitions_ref(partitions: PartitionsDefinition[Any] | None, seen: dict[str, Any]) -> str | None:
    """A name for the partitions definition, described once under "partitions"."""
    described = describe_partitions(partitions)
    if described is None:
        return None
    name = f"{described['type']}:{described.get('start', '')}"
    seen[name] = described
    return name


def _status(value: Any) -> str | None:
    return None if value is None else str(value.value)


def describe(defs: Definitions) -> dict[str, Any]:
    """Assets, checks, partitions, jobs, schedules, sensors and resources (with their config), sorted."""
    repo = defs.get_repository_def()
    assets: dict[str, Any] = {}
    checks: dict[str, Any] = {}
    partitions: dict[str, Any] = {}
    for definition in defs.assets or []:
        node = definition.node_def.name  # type: ignore[union-attr]
        for spec in definition.specs:
            assets[spec.key.to_user_string()] = {
                "op": node,
                "group": spec.group_name,
                "description": spec.description,
                "kinds": sorted(spec.kinds),
                "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
                "owners": sorted(spec.owners),
                "code_version": spec.code_version,
                "partitions": _partitions_ref(definition.partitions_def, partitions),
                "backfill_policy": str(definition.backfill_policy),
                "can_subset": definition.can_subset,
                "op_tags": dict(sorted((definition.op.tags or {}).items())),
                "required_resource_keys": sorted(definition.required_resource_keys),
            }
        for check in definition.check_specs:
            checks[f"{check.asset_key.to_user_string()}:{check.name}"] = {
                "op": node,
                "description": check.description,
                "blocking": check.blocking,
            }
    jobs = {
        job.name: {
            "description": job.description,
            "assets": sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys),
            "partitions": _partitions_ref(job.partitions_def, partitions),
            "tags": dict(sorted(job.tags.items())),
            "executor": job.executor_def.name,
        }
        for job in repo.get_all_jobs()
        if not job.name.startswith("__")  # Dagster's implicit asset job
    }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron_schedule": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": _status(schedule.default_status),
            "description": schedule.description,
        }
        for schedule in repo.schedule_defs
    }
    sensors = {
        sensor.name: {
            "jobs": sorted(target.job_name for target in sensor.targets),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": _status(sensor.default_status),
            "description": sensor.description,
            "required_resource_keys": sorted(sensor.required_resource_keys),
        }
        for sensor in repo.sensor_defs
    }
    resources = {
        key: {"type": f"{type(resource).__module__}.{type(resource).__qualname__}", "config": _config(resource)}
        for key, resource in sorted((defs.resources or {}).items())
    }
    return {
        "assets": dict(sorted(assets.items())),
        "asset_checks": dict(sorted(checks.items())),
        "partitions": dict(sorted(partitions.items())),
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": resources,
    }


def _config(resource: Any) -> Any:
    """A Pythonic resource's config, nested resources included; anything else by its type alone."""
    dump = getattr(resource, "model_dump", None)
    if dump is None:
        return None
    config: Mapping[str, Any] = dump()
    return config


def render(defs: Definitions) -> str:
    return json.dumps(describe(defs), indent=2, sort_keys=True) + "\n"


def main() -> None:
    print(render(importlib.import_module(CODE_LOCATION).defs), end="")


if __name__ == "__main__":
    main()
