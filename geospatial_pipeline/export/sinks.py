"""Where the layers go: GDAL through pyogrio (GeoPackage, FlatGeobuf) or pyarrow (GeoParquet).

pyogrio's wheel carries its own GDAL, which has no Parquet driver; GeoParquet is therefore written with
pyarrow and the `geo` metadata of the lake's own writer (lake/writers.geo_metadata). Each layer is
handed over as a stream of tables and written as they come: no layer is ever held whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio  # type: ignore[import-untyped]
from pyproj import CRS

from geospatial_pipeline.export import ExportError
from geospatial_pipeline.export.layers import BBOX, GEOMETRY, for_gdal, gdal_geometry_type, gdal_schema
from geospatial_pipeline.lake.geoparquet import OUTPUT_COMPRESSION, ROW_GROUP_ROWS, geo_metadata, wkb_types

# GDAL's name for the geometry column of a GeoPackage layer; QGIS keys a layer's styles by it.
GPKG_GEOMETRY_COLUMN = "geom"
GDAL_DRIVERS = {"gpkg": "GPKG", "fgb": "FlatGeobuf"}

# GeoPackage 1.2 (not GDAL's newer default, 1.4): what GDAL 3.6 and with it Debian's QGIS read without a
# warning. Timestamps with milliseconds, as the GeoPackage standard spells them.
_GPKG_DATASET = {"VERSION": "1.2"}
_GPKG_LAYER = {"GEOMETRY_NAME": GPKG_GEOMETRY_COLUMN, "FID": "fid", "DATETIME_PRECISION": "MILLISECOND"}

Progress = Callable[[int], None]


def crs_text(crs: CRS) -> str:
    """How a CRS is handed to GDAL and the GeoParquet metadata: its authority code where it has one."""
    authority = crs.to_authority(min_confidence=90)
    return ":".join(authority) if authority else crs.to_wkt()


class GdalSink:
    """A GeoPackage (every layer in one file) or a FlatGeobuf file (one layer), written by pyogrio."""

    def __init__(self, path: Path, fmt: str, crs: CRS):
        self.path, self.fmt, self.crs = path, fmt, crs
        self.driver = GDAL_DRIVERS[fmt]

    def write_layer(
        self,
        name: str,
        schema: pa.Schema,
        tables: Iterable[pa.Table],
        geometry_types: set[str],
        progress: Progress,
        description: str = "",
    ) -> int:
        """Write one layer from a stream of lake-shaped tables; returns its row count."""
        geometry_type = gdal_geometry_type(geometry_types)
        multi = geometry_type == "MultiPolygon"
        out_schema = gdal_schema(schema)
        failure: list[BaseException] = []
        rows = 0

        def batches():
            nonlocal rows
            try:
                for table in tables:
                    yield from for_gdal(table, out_schema, multi).to_batches()
                    rows += table.num_rows
                    progress(table.num_rows)
            except BaseException as exc:  # GDAL sees only "error while accessing batch": keep the real one
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(out_schema, batches())
        if self.fmt == "gpkg":
            dataset_options = _GPKG_DATASET
            layer_options = {**_GPKG_LAYER, "DESCRIPTION": description} if description else _GPKG_LAYER
        else:  # FlatGeobuf: its spatial index cannot hold a feature without geometry
            dataset_options = {}
            layer_options = {"SPATIAL_INDEX": "NO" if schema.field(GEOMETRY).nullable else "YES"}
        try:
            pyogrio.write_arrow(
                reader,
                str(self.path),
                layer=name,
                driver=self.driver,
                geometry_name=GEOMETRY,
                geometry_type=geometry_type,
                crs=crs_text(self.crs),
                dataset_options=dataset_options,
                layer_options=layer_options,
            )
        except Exception as exc:
            if failure:
                raise failure[0] from None
            raise ExportError(f"GDAL could not write layer {name} to {self.path}: {exc}") from exc
        return rows


class GeoParquetSink:
    """One GeoParquet 1.1 file (one layer): the lake's columns, row groups of up to ROW_GROUP_ROWS, and the
    `geo` metadata (types, bbox) completed at the end, as the lake's own writer does."""

    def __init__(self, path: Path, fmt: str, crs: CRS):
        self.path, self.crs = path, crs

    def write_layer(
        self,
        name: str,
        schema: pa.Schema,
        tables: Iterable[pa.Table],
        geometry_types: set[str],
        progress: Progress,
        description: str = "",
    ) -> int:
        types: set[str] = set()
        extent = np.array([np.inf, np.inf, -np.inf, -np.inf])
        pending: list[pa.Table] = []
        rows = pending_rows = 0
        try:  # no stored Arrow schema: written at open, it would hide the `geo` metadata added at close
            writer = pq.ParquetWriter(
                self.path, schema, compression=OUTPUT_COMPRESSION, write_statistics=True, store_schema=False
            )
        except (OSError, pa.ArrowException) as exc:
            raise ExportError(f"cannot write {self.path}: {exc}") from exc
        with writer:
            for table in tables:
                table = table.select(schema.names).cast(schema)
                types |= wkb_types(table[GEOMETRY])
                extent = _union(extent, table[BBOX])
                pending.append(table)
                pending_rows += table.num_rows
                rows += table.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                    pending, pending_rows = [], 0
                progress(table.num_rows)
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
            bbox = [float(v) for v in extent] if np.isfinite(extent).all() else None
            meta = geo_metadata(crs_text(self.crs), types, bbox)
            writer.add_key_value_metadata({"geo": json.dumps(meta)})
        return rows


def _union(extent: np.ndarray, bbox: pa.ChunkedArray) -> np.ndarray:
    box = pc.drop_null(bbox.combine_chunks()) if bbox.null_count else bbox.combine_chunks()
    if len(box) == 0:
        return extent
    low = [pc.min(box.field(part)).as_py() for part in ("xmin", "ymin")]
    high = [pc.max(box.field(part)).as_py() for part in ("xmax", "ymax")]
    return np.array([min(extent[0], low[0]), min(extent[1], low[1]), max(extent[2], high[0]), max(extent[3], high[1])])


def open_sink(fmt: str, path: Path, crs: CRS) -> GdalSink | GeoParquetSink:
    return GeoParquetSink(path, fmt, crs) if fmt == "parquet" else GdalSink(path, fmt, crs)
