"""The partition's three outputs, produced by one pass over its landing batch.

The asset keys are defined here, beside the asset that produces them; the job, the checks and the tests
import them from this module.
"""

import datetime as dt
import logging
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)

from geospatial_pipeline.defs.checks import check_specs, evaluate_checks
from geospatial_pipeline.defs.partitions import daily_partitions
from geospatial_pipeline.defs.resources import LakeResource
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.publish import PartitionReport, run_partition
from geospatial_pipeline.lake.store import ObjectStore
from geospatial_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

GROUP = "field_boundaries"
FIELDS = AssetKey("field_boundaries")
LATE = AssetKey("late_field_arrivals")
REJECTED = AssetKey("rejected_field_records")
ASSET_NAME = "publish_field_partition"


def code_version() -> str:
    try:
        return version("geospatial-pipeline")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def build_partition_assets(settings: PipelineSettings) -> AssetsDefinition:
    """The multi-asset publishing one daily partition under `settings` (partitions, rules, limits)."""
    partitions = daily_partitions(settings)
    rules = settings.rules()
    limits = settings.limits()
    digest = settings.digest()

    @multi_asset(
        name=ASSET_NAME,
        specs=[
            AssetSpec(
                FIELDS,
                group_name=GROUP,
                description="On-time fields of the day, plus late fields merged in: GeoParquet 1.1 at "
                "fields/date={D}/fields.parquet",
                kinds={"geoparquet", "s3"},
            ),
            AssetSpec(
                LATE,
                group_name=GROUP,
                description="Fields of this day's batch that arrived late: late_data/{intended}/{field_id}"
                ".geojson|.txt and a GeoParquet batch per intended date",
                kinds={"geojson", "s3"},
            ),
            AssetSpec(
                REJECTED,
                group_name=GROUP,
                description="Quarantined records with reason codes: rejected/{D}/rejected.geojsonl",
                kinds={"geojson", "s3"},
            ),
        ],
        check_specs=check_specs(FIELDS, REJECTED),
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        can_subset=False,
        op_tags={"geospatial_pipeline/kind": "partition-publish"},
    )
    def publish_field_partition(
        context: AssetExecutionContext, lake: LakeResource
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        partition = dt.date.fromisoformat(context.partition_key)
        store = lake.store()
        context.log.info(f"Processing {store.uri(keys.raw_prefix(partition))} for partition {partition}")
        report = run_partition(
            store,
            partition,
            rules,
            target_crs=settings.target_crs,
            limits=limits,
            run_id=context.run.run_id,
            code_version=code_version(),
            config_digest=digest,
        )
        log.info("partition %s: %s", partition, report.counts)
        if not report.inputs:
            context.log.warning(f"No raw files under {store.uri(keys.raw_prefix(partition))}")
        yield from _results(store, report)
        yield from evaluate_checks(store, report, settings.max_rejected_ratio, fields=FIELDS, rejected=REJECTED)

    return publish_field_partition


def _results(store: ObjectStore, report: PartitionReport) -> Iterator[MaterializeResult]:
    counts = report.counts
    total = counts["input_records"]
    late_ratio = counts["late"] / total if total else 0.0
    bbox = report.geo["columns"]["geometry"].get("bbox")
    manifest_uri = store.uri(keys.manifest_key(report.partition))
    yield MaterializeResult(
        asset_key=FIELDS,
        metadata={
            "dagster/row_count": counts["published_rows"],
            "uri": MetadataValue.url(report.outputs["fields"]["uri"]),
            "manifest": MetadataValue.url(manifest_uri),
            "input_records": total,
            "on_time": counts["on_time"],
            "superseded": counts["superseded"],
            # Late fields in the published file, split by whether this run merged their batch first.
            "late_fields_published": counts["merged_late"],
            "late_fields_merged_this_run": report.late_merge.get("rows_new", 0),
            "late_fields_merged_before": report.late_merge.get("rows_merged_before", 0),
            "late_batches_merged": MetadataValue.json(report.merged_late_batches),
            "bbox": MetadataValue.json(bbox),
            "geometry_types": MetadataValue.json(report.geo["columns"]["geometry"]["geometry_types"]),
            "preview": _preview_table(report.preview),
        },
    )
    yield MaterializeResult(
        asset_key=LATE,
        metadata={
            "dagster/row_count": counts["late"],
            "late_ratio": round(late_ratio, 6),
            "late_by_intended_date": MetadataValue.json(report.late_by_date),
            "late_objects_written": report.outputs["late_objects"],
            "late_batches": MetadataValue.json([b["uri"] for b in report.outputs["late_batches"]]),
        },
    )
    yield MaterializeResult(
        asset_key=REJECTED,
        metadata={
            "dagster/row_count": counts["rejected"],
            "uri": MetadataValue.url(report.outputs["rejected"]["uri"]),
            "reasons": MetadataValue.json(report.reasons),
            "rejected_ratio": round(counts["rejected"] / total, 6) if total else 0.0,
        },
    )


def _preview_table(rows: list[dict[str, Any]]) -> MetadataValue:
    columns = ["field_id", "processing_date", "arrival_time", "arrived_late", "area_ha", "source_crs"]
    return MetadataValue.table(
        records=[
            TableRecord({c: (str(r[c]) if c in ("processing_date", "arrival_time") else r[c]) for c in columns})
            for r in rows
        ],
        schema=TableSchema(
            columns=[
                TableColumn("field_id", "string"),
                TableColumn("processing_date", "string"),
                TableColumn("arrival_time", "string"),
                TableColumn("arrived_late", "bool"),
                TableColumn("area_ha", "float"),
                TableColumn("source_crs", "string"),
            ]
        ),
    )
