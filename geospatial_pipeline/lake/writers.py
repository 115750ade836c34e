"""Writers for every published object: GeoParquet (streaming), late GeoJSON/text, quarantine, manifest."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import CRS

from geospatial_pipeline.core.lateness import iso_utc
from geospatial_pipeline.core.partition import FIELD_SCHEMA
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore

GEOPARQUET_VERSION = "1.1.0"
ROW_GROUP_ROWS = 65_536
_WKB_TYPES = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


def geo_metadata(crs: str, geometry_types: Iterable[str], bbox: list[float] | None) -> dict:
    """The `geo` file metadata of GeoParquet 1.1 for our single WKB column with a bbox covering."""
    column = {
        "encoding": "WKB",
        "geometry_types": sorted(set(geometry_types)),
        "crs": CRS.from_user_input(crs).to_json_dict(),
        "orientation": "counterclockwise",
        "edges": "planar",
        "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}},
    }
    if bbox is not None:
        column["bbox"] = bbox
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": column}}


class GeoParquetFile:
    """Writes row groups as they come; the `geo` metadata (types, bbox) is completed at close."""

    def __init__(self, path: Path, crs: str, schema: pa.Schema = FIELD_SCHEMA):
        self.path = path
        self.crs = crs
        self.schema = schema
        self.rows = 0
        self._types: set[str] = set()
        self._bbox = [np.inf, np.inf, -np.inf, -np.inf]
        self._writer = pq.ParquetWriter(
            path, schema, compression="zstd", compression_level=3, write_statistics=True, store_schema=False
        )

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        # The WKB type code sits in bytes 1..4 (little-endian, as shapely writes it).
        codes = pc.binary_slice(table["geometry"], 1, 5).to_numpy(zero_copy_only=False)
        for code in set(codes):
            self._types.add(_WKB_TYPES.get(int.from_bytes(code, "little") % 1000, "Unknown"))
        bbox = table["bbox"].combine_chunks()
        self._bbox = [
            min(self._bbox[0], pc.min(bbox.field("xmin")).as_py()),
            min(self._bbox[1], pc.min(bbox.field("ymin")).as_py()),
            max(self._bbox[2], pc.max(bbox.field("xmax")).as_py()),
            max(self._bbox[3], pc.max(bbox.field("ymax")).as_py()),
        ]
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    @property
    def bbox(self) -> list[float] | None:
        return [float(v) for v in self._bbox] if self.rows else None

    def close(self) -> dict:
        meta = geo_metadata(self.crs, self._types, self.bbox)
        self._writer.add_key_value_metadata({"geo": json.dumps(meta)})
        self._writer.close()
        return meta


def write_geoparquet(store: ObjectStore, key: str, tables: Iterable[pa.Table], crs: str, work_dir: Path) -> tuple[ObjectInfo, dict, int]:
    """Stream tables into one GeoParquet object, published in a single atomic PUT/rename."""
    with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".parquet", delete=False) as tmp:
        path = Path(tmp.name)
    try:
        out = GeoParquetFile(path, crs)
        for table in tables:
            out.write(table)
        meta = out.close()
        info = store.put_file(key, path, "application/vnd.apache.parquet")
        return info, meta, out.rows
    finally:
        path.unlink(missing_ok=True)


def late_text(field_id: str, intended: dt.date, arrival: dt.datetime, detected_in: dt.date) -> str:
    return (
        f"Late field: {field_id} for partition {intended.isoformat()}, arrived {iso_utc(arrival)}, "
        f"detected in {detected_in.isoformat()}\n"
    )


def late_feature(row: dict) -> bytes:
    """An RFC 7946 Feature (lon/lat, CCW exterior rings) with every property of the published row."""
    props = {
        "field_id": row["field_id"],
        "processing_date": row["processing_date"].isoformat(),
        "arrival_time": iso_utc(row["arrival_time"]),
        "arrived_late": True,
        "late_reason": row["late_reason"],
        "detected_in": row["detected_in"].isoformat(),
        "source_crs": row["source_crs"],
        "area_ha": row["area_ha"],
        "perimeter_m": row["perimeter_m"],
        "repaired": row["repaired"],
        "source_key": row["source_key"],
        "source_line": row["source_line"],
        "data": orjson.Fragment(row["data"]),
    }
    return orjson.dumps(
        {"type": "Feature", "id": row["field_id"], "geometry": orjson.Fragment(row["geometry_geojson"]), "properties": props}
    )


def write_late_objects(store: ObjectStore, late: pa.Table, concurrency: int) -> list[str]:
    """Two objects per late field (the seed's contract), PUT concurrently through a bounded pool."""
    jobs: list[tuple[str, bytes, str]] = []
    for row in late.select(
        [n for n in late.column_names if n not in ("geometry", "bbox", "seq")]
    ).to_pylist():
        intended = row["processing_date"]
        fid = row["field_id"]
        jobs.append((keys.late_object_key(intended, fid, ".geojson"), late_feature(row), "application/geo+json"))
        text = late_text(fid, intended, row["arrival_time"], row["detected_in"])
        jobs.append((keys.late_object_key(intended, fid, ".txt"), text.encode(), "text/plain; charset=utf-8"))
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="late-put") as pool:
        for _ in pool.map(lambda job: store.put_bytes(*job), jobs):
            pass
    return [k for k, _, _ in jobs]


def write_lines(store: ObjectStore, key: str, lines_path: Path, content_type: str) -> ObjectInfo:
    return store.put_file(key, lines_path, content_type)


def write_manifest(store: ObjectStore, partition: dt.date, manifest: dict) -> ObjectInfo:
    body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return store.put_bytes(keys.manifest_key(partition), body, "application/json")
