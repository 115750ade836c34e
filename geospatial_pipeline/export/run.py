"""One export: find the partitions, read what they hold from their footers and manifests, then stream each
layer into the output a partition (and a Parquet row group) at a time.

What can be checked without reading the data (a missing partition or object, a manifest or Parquet footer
that cannot be read, partitions in different CRSs) fails in the planning step, before the output file is
created. The output is written under a temporary name beside its target and renamed into place only when
complete; a failure while writing removes it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from pyproj import CRS
from pyproj.exceptions import CRSError
from tqdm import tqdm  # type: ignore[import-untyped]

from geospatial_pipeline.export import LAYERS, ExportError
from geospatial_pipeline.export.lake_reader import LakeReader
from geospatial_pipeline.export.layers import GEOMETRY, SCHEMAS
from geospatial_pipeline.export.quarantine import rejected_table
from geospatial_pipeline.export.sinks import GPKG_GEOMETRY_COLUMN, open_sink
from geospatial_pipeline.export.styles import DESCRIPTIONS, add_default_styles
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.geoparquet import wkb_types
from geospatial_pipeline.lake.store import ObjectStore

# GeoParquet's default when a file names no CRS.
DEFAULT_GEOPARQUET_CRS = "OGC:CRS84"
_LISTED_DATES = 10


@dataclass(frozen=True)
class ExportRequest:
    first: dt.date
    last: dt.date
    output: Path
    fmt: str = "gpkg"
    layers: tuple[str, ...] = LAYERS
    skip_missing: bool = False
    overwrite: bool = False

    def days(self) -> list[dt.date]:
        if self.first > self.last:
            raise ExportError(f"bad range: {self.first} is after {self.last}")
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass
class ExportResult:
    output: Path
    partitions: list[dt.date]
    missing: list[dt.date]
    rows: dict[str, int]
    crs: str


@dataclass
class _Plan:
    partitions: list[dt.date]
    crs: CRS | None = None
    types: dict[str, set[str]] = field(default_factory=lambda: {"fields": set(), "late_fields": set()})
    late_keys: dict[dt.date, list[str]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LAYERS, 0))

    @property
    def target_crs(self) -> CRS:
        """The CRS of every partition (planning refuses a mix), which the export is written in."""
        if self.crs is None:
            raise ExportError("no partition to take a CRS from")
        return self.crs


def export(store: ObjectStore, request: ExportRequest, progress: bool | None = None) -> ExportResult:
    """Write the requested layers of the requested partitions into request.output. `progress`: a bar on
    stderr (None: only when stderr is a terminal)."""
    _check_output(request.output, request.overwrite)
    reader = LakeReader(store)
    present, missing = reader.published(request.days())
    if missing and not request.skip_missing:
        first_missing = store.uri(keys.manifest_key(missing[0]))
        raise ExportError(
            f"not published in this lake: {_dates(missing)} (no manifest, e.g. {first_missing}); "
            "publish those partitions first, or pass --skip-missing to export the others"
        )
    if not present:
        raise ExportError(f"no published partition between {request.first} and {request.last}")
    plan = _plan(reader, present, request.layers)
    # Same folder (the rename is atomic), same suffix (GDAL checks a GeoPackage's extension).
    scratch = request.output.with_name(f".{request.output.stem}.{os.getpid()}.part{request.output.suffix}")
    rows: dict[str, int] = {}
    try:
        sink = open_sink(request.fmt, scratch, plan.target_crs)
        with (
            tqdm(
                total=sum(plan.totals[layer] for layer in request.layers),
                unit="rows",
                unit_scale=True,
                desc=request.output.name,
                disable=None if progress is None else not progress,
            ) as bar,
            tempfile.TemporaryDirectory(prefix="geospatial-export-") as spool_dir,
        ):
            for layer in request.layers:
                tables, types, on_progress = _layer_source(
                    reader, plan, layer, request.fmt, Path(spool_dir), bar.update
                )
                rows[layer] = sink.write_layer(
                    layer, SCHEMAS[layer], tables, types, on_progress, description=DESCRIPTIONS[layer]
                )
        if request.fmt == "gpkg":
            add_default_styles(scratch, list(request.layers), GPKG_GEOMETRY_COLUMN)
        os.replace(scratch, request.output)
    except OSError as exc:
        raise ExportError(f"cannot write {request.output}: {exc}") from exc
    finally:
        scratch.unlink(missing_ok=True)
    return ExportResult(request.output, present, missing, rows, plan.target_crs.to_string())


def _check_output(output: Path, overwrite: bool) -> None:
    if output.is_dir():
        raise ExportError(f"output {output} is a folder; name a file")
    if not output.parent.is_dir():
        raise ExportError(f"output folder {output.parent} does not exist")
    if output.exists() and not overwrite:
        raise ExportError(f"output {output} exists; pass --overwrite to replace it")


def _dates(days: list[dt.date]) -> str:
    shown = ", ".join(day.isoformat() for day in days[:_LISTED_DATES])
    return shown + (f" and {len(days) - _LISTED_DATES} more" if len(days) > _LISTED_DATES else "")


def _plan(reader: LakeReader, partitions: list[dt.date], layers: tuple[str, ...]) -> _Plan:
    """The export's CRS, geometry types and row counts, from manifests and Parquet footers alone."""
    plan = _Plan(partitions)
    crs_seen: dict[str, CRS] = {}
    for day in partitions:
        manifest = reader.manifest(day)
        if "rejected_records" in layers:
            reader.require(keys.rejected_key(day))
            plan.totals["rejected_records"] += int(manifest["counts"].get("rejected", 0))
        sources = [("fields", keys.fields_key(day))]
        if "late_fields" in layers:
            plan.late_keys[day] = reader.late_batch_keys(day)
            sources += [("late_fields", key) for key in plan.late_keys[day]]
        for layer, key in sources:
            footer = reader.footer(key)
            column = reader.geo(key, footer)
            plan.types[layer] |= set(column.get("geometry_types") or ["Unknown"])
            plan.totals[layer] += footer.num_rows
            plan.crs = _same_crs(plan.crs, _crs_of(reader, key, column, crs_seen), key, reader)
    return plan


def _crs_of(reader: LakeReader, key: str, column: dict, seen: dict[str, CRS]) -> CRS:
    if "crs" in column and column["crs"] is None:
        raise ExportError(f"{reader.store.uri(key)} has an undefined CRS (null in its geo metadata)")
    text = json.dumps(column["crs"], sort_keys=True) if "crs" in column else DEFAULT_GEOPARQUET_CRS
    if text not in seen:
        try:
            seen[text] = CRS.from_user_input(column.get("crs") or DEFAULT_GEOPARQUET_CRS)
        except CRSError as exc:
            raise ExportError(f"{reader.store.uri(key)}: its CRS is not known to PROJ: {exc}") from exc
    return seen[text]


def _same_crs(current: CRS | None, found: CRS, key: str, reader: LakeReader) -> CRS:
    if current is not None and current != found:
        raise ExportError(
            f"{reader.store.uri(key)} is in {found.to_string()}, earlier partitions in {current.to_string()}: "
            "export them separately"
        )
    return found


def _layer_source(
    reader: LakeReader, plan: _Plan, layer: str, fmt: str, spool_dir: Path, progress: Callable[[int], None]
) -> tuple[Iterator[pa.Table], set[str], Callable[[int], None]]:
    """(tables of the layer, its geometry types, the progress callback for the sink)."""
    if layer == "fields":
        tables = (t for day in plan.partitions for t in reader.row_groups(keys.fields_key(day)))
        return tables, plan.types["fields"], progress
    if layer == "late_fields":
        tables = (t for day in plan.partitions for key in plan.late_keys[day] for t in reader.row_groups(key))
        return tables, plan.types["late_fields"], progress
    rejected = _rejected_tables(reader, plan)
    if fmt == "parquet":  # the GeoParquet writer learns the types as it goes
        return rejected, set(), progress
    # GDAL declares the layer's type before the first row: the quarantine is parsed once into a spool
    # on disk, its types noted, and the layer written from the spool.
    types, spooled = _spool(rejected, spool_dir / "rejected.arrow", progress)
    return spooled, types, lambda rows: None


def _rejected_tables(reader: LakeReader, plan: _Plan) -> Iterator[pa.Table]:
    for day in plan.partitions:
        key = keys.rejected_key(day)
        for lines in reader.quarantine_lines(day):
            with reader.reading(key):
                yield rejected_table(lines, day, plan.target_crs)


def _spool(
    tables: Iterator[pa.Table], path: Path, progress: Callable[[int], None]
) -> tuple[set[str], Iterator[pa.Table]]:
    types: set[str] = set()
    schema = SCHEMAS["rejected_records"]
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for table in tables:
            types |= wkb_types(table[GEOMETRY])
            writer.write_table(table)
            progress(table.num_rows)

    def replay() -> Iterator[pa.Table]:
        with pa.memory_map(str(path)) as source:
            spool = pa.ipc.open_file(source)
            for index in range(spool.num_record_batches):
                yield pa.Table.from_batches([spool.get_batch(index)], schema)

    return types, replay()
