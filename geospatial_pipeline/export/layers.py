"""The three exported layers' columns, and the lake's Arrow tables reshaped for GDAL's formats.

GeoParquet output keeps the lake's columns as they are (the `bbox` struct is its covering). GDAL formats
have no struct columns, so `bbox` becomes four numbers; and QGIS wants one geometry type per layer, so
where every geometry is polygonal the layer is MultiPolygon and polygons become one-part multipolygons.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.schema import BBOX_TYPE, FIELD_SCHEMA

GEOMETRY = "geometry"
BBOX = "bbox"
BBOX_PARTS = ("xmin", "ymin", "xmax", "ymax")
# What GDAL reads as a WKB geometry column.
WKB_EXTENSION = {b"ARROW:extension:name": b"geoarrow.wkb"}
POLYGONAL = frozenset({"Polygon", "MultiPolygon"})

# Quarantined records: where they came from, why, their raw text, and their geometry where it parsed.
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("partition_date", pa.date32(), nullable=False),
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("field_id", pa.string()),
        pa.field("reason_codes", pa.string(), nullable=False),
        pa.field("reasons", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field(GEOMETRY, pa.binary()),
        pa.field(BBOX, BBOX_TYPE),
    ]
)

SCHEMAS = {"fields": FIELD_SCHEMA, "late_fields": FIELD_SCHEMA, "rejected_records": REJECTED_SCHEMA}

# WKB headers of a 2D polygon (either byte order), and of a one-part 2D multipolygon (little-endian).
_POLYGON_HEADERS = pa.array([b"\x01\x03\x00\x00\x00", b"\x00\x00\x00\x00\x03"], pa.binary())
_MULTI_OF_ONE = b"\x01\x06\x00\x00\x00\x01\x00\x00\x00"


def gdal_geometry_type(types: set[str]) -> str:
    """The layer type GDAL declares: MultiPolygon when all geometries are polygonal, else mixed (Unknown)."""
    return "MultiPolygon" if types <= POLYGONAL else "Unknown"


def gdal_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` as written by GDAL: `bbox` as bbox_xmin..bbox_ymax, the geometry tagged as WKB."""
    fields: list[pa.Field] = []
    for field in schema:
        if field.name == BBOX:
            fields.extend(pa.field(f"{BBOX}_{part}", pa.float64(), nullable=field.nullable) for part in BBOX_PARTS)
        elif field.name == GEOMETRY:
            fields.append(field.with_metadata(WKB_EXTENSION))
        else:
            fields.append(field)
    return pa.schema(fields)


def for_gdal(table: pa.Table, schema: pa.Schema, multi: bool) -> pa.Table:
    """A lake table in the columns of gdal_schema(), polygons promoted to multipolygons if `multi`."""
    columns = {}
    for name in table.column_names:
        if name == BBOX:
            bbox = table[BBOX].combine_chunks()
            for part in BBOX_PARTS:
                columns[f"{BBOX}_{part}"] = bbox.field(part)
        elif name == GEOMETRY and multi:
            columns[name] = promote_polygons(table[name].combine_chunks())
        else:
            columns[name] = table[name]
    return pa.table(columns).select(schema.names).cast(schema)


def promote_polygons(wkb: pa.Array) -> pa.Array:
    """Polygon WKB as one-part MultiPolygon WKB: a multipolygon header in front of the polygon's own bytes
    (WKB lets each part keep its byte order), so nothing is parsed. Other geometries and nulls stay."""
    is_polygon = pc.is_in(pc.binary_slice(wkb, 0, 5), _POLYGON_HEADERS)
    prefixed = pc.binary_join_element_wise(pa.scalar(_MULTI_OF_ONE), wkb, pa.scalar(b""))
    return pc.if_else(is_polygon, prefixed, wkb)
