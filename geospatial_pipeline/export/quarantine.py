"""Quarantine lines (GeoJSON Features with null geometry and the raw record) as rows of `rejected_records`.

The quarantine keeps the record as it came, so its geometry is recovered from the raw text where that
parses: GeoJSON geometry in the record's own `crs` property (lon/lat WGS 84 without one), reprojected
into the export's CRS and flattened to 2D. A record whose text, geometry or CRS cannot be read keeps
every other column and a null geometry: it is in the layer, just not on the map.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import orjson
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from geospatial_pipeline.export.layers import REJECTED_SCHEMA

DEFAULT_RECORD_CRS = "OGC:CRS84"  # RFC 7946: lon/lat WGS 84


def rejected_table(lines: list[bytes], day: dt.date, target: CRS) -> pa.Table:
    """Rows of REJECTED_SCHEMA for quarantine lines of partition `day`; ValueError for a line that is not
    a quarantine record (the file is then not what the pipeline writes)."""
    columns: dict[str, list] = {name: [] for name in REJECTED_SCHEMA.names if name not in ("geometry", "bbox")}
    geometries: list[dict | None] = []
    crs_texts: list[str] = []
    for number, line in enumerate(lines, 1):
        props = _properties(line, number)
        raw = props["raw"]
        record = _record(raw)
        found = record.get("properties")
        record_props: dict = found if isinstance(found, dict) else {}
        field_id = record_props.get("field_id")
        crs = record_props.get("crs")
        geometry = record.get("geometry")
        columns["partition_date"].append(day)
        columns["source_key"].append(props["source_key"])
        columns["source_line"].append(props["source_line"])
        columns["field_id"].append(field_id if isinstance(field_id, str) else None)
        columns["reason_codes"].append(", ".join(props["reason_codes"]))
        columns["reasons"].append(orjson.dumps(props.get("reasons", [])).decode())
        columns["raw"].append(raw)
        geometries.append(geometry if isinstance(geometry, dict) else None)
        crs_texts.append(crs if isinstance(crs, str) else DEFAULT_RECORD_CRS)
    shapes = _shapes(geometries, crs_texts, target)
    wkb = pa.array(shapely.to_wkb(shapes, output_dimension=2), pa.binary())
    bounds = shapely.bounds(shapes)
    present = ~np.isnan(bounds[:, 0])
    bbox = pa.StructArray.from_arrays(
        [pa.array(bounds[:, k]) for k in range(4)],
        names=["xmin", "ymin", "xmax", "ymax"],
        mask=pa.array(~present),
    )
    table = pa.table({**columns, "geometry": wkb, "bbox": bbox})
    return table.cast(REJECTED_SCHEMA)


def _properties(line: bytes, number: int) -> dict:
    try:
        feature = orjson.loads(line)
        props = feature["properties"]
        if not (isinstance(props["raw"], str) and isinstance(props["reason_codes"], list)):
            raise TypeError("raw or reason_codes of the wrong type")
        props["source_key"], props["source_line"] = str(props["source_key"]), int(props["source_line"])
        props["reason_codes"] = [str(code) for code in props["reason_codes"]]
        return props
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"line {number} of the chunk is not a quarantine record ({exc})") from None


def _record(raw: str) -> dict:
    """The raw record as JSON, or {} where it is not a JSON object (malformed_json and the like)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _shapes(geometries: list[dict | None], crs_texts: list[str], target: CRS) -> np.ndarray:
    """Shapely geometries in the target CRS, None where a geometry is missing, unreadable or empty, its CRS
    unknown, or its coordinates not on the map (_on_the_map)."""
    shapes = np.full(len(geometries), None, dtype=object)
    for i, geometry in enumerate(geometries):
        if geometry is None:
            continue
        try:
            shape = shapely.from_geojson(orjson.dumps(geometry))
        except (shapely.errors.GEOSException, ValueError, TypeError, orjson.JSONEncodeError):
            continue
        if shape is not None and not shape.is_empty:
            shapes[i] = shapely.force_2d(shape)
    for crs_text in set(crs_texts):
        rows = np.flatnonzero((np.asarray(crs_texts, dtype=object) == crs_text) & (shapes != None))  # noqa: E711
        if not len(rows):
            continue
        known, transformer = _transformer(crs_text, target.to_wkt())
        if not known:
            shapes[rows] = None
        elif transformer is not None:
            shapes[rows] = _reproject(shapes[rows], transformer)
    usable = np.array([s is not None and _on_the_map(shapely.get_coordinates(s), target) for s in shapes], bool)
    shapes[~usable] = None
    return shapes


def _on_the_map(coords: np.ndarray, target: CRS) -> bool:
    """Finite, and for a geographic CRS on the globe: a swapped lon/lat or a projected pair read as degrees
    (the usual reasons for outside_crs_area_of_use) stays off the map rather than far beyond it."""
    if not np.isfinite(coords).all():
        return False
    if target.is_geographic:
        return bool((np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all())
    return True


def _reproject(shapes: np.ndarray, transformer: Transformer) -> np.ndarray:
    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    try:
        return shapely.transform(shapes, move)
    except (ProjError, ValueError, shapely.errors.GEOSException):
        return np.full(len(shapes), None, dtype=object)


@functools.lru_cache(maxsize=256)
def _transformer(source: str, target_wkt: str) -> tuple[bool, Transformer | None]:
    """(whether PROJ knows the record's CRS, the lon/lat-ordered transformer into the export's CRS, None
    where the coordinates need no change)."""
    try:
        src, dst = CRS.from_user_input(source), CRS.from_wkt(target_wkt)
    except CRSError:
        return False, None
    if src == dst or (src.is_geographic and dst.is_geographic and src.equals(dst, ignore_axis_order=True)):
        return True, None
    try:
        return True, Transformer.from_crs(src, dst, always_xy=True)
    except (CRSError, ProjError):
        return False, None
