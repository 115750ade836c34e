"""The published columns: the GeoParquet file of a partition and the late batches share them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geospatial_pipeline.core.arrays import Int32s, Int64s

BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])

# The published columns, in order; the GeoParquet file and the late batches share them.
FIELD_SCHEMA = pa.schema(
    [
        pa.field("field_id", pa.string(), nullable=False),
        pa.field("processing_date", pa.date32(), nullable=False),
        pa.field("arrival_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("arrived_late", pa.bool_(), nullable=False),
        pa.field("detected_in", pa.date32(), nullable=False),
        pa.field("late_reason", pa.string()),
        pa.field("source_crs", pa.string(), nullable=False),
        pa.field("area_ha", pa.float64(), nullable=False),
        pa.field("perimeter_m", pa.float64(), nullable=False),
        pa.field("repaired", pa.bool_(), nullable=False),
        pa.field("data", pa.string(), nullable=False),
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("geometry", pa.binary(), nullable=False),
        pa.field("bbox", BBOX_TYPE, nullable=False),
    ]
)
# Columns with a handful of distinct values per partition: worth Parquet's dictionary encoding. The rest
# (ids, geometry, properties) are nearly all distinct, and a dictionary attempt on them costs CPU for nothing.
FEW_VALUES = ("processing_date", "detected_in", "late_reason", "source_crs", "source_key")
# Late rows also carry their RFC 7946 geometry (lon/lat) for the per-field GeoJSON objects.
LATE_SCHEMA = FIELD_SCHEMA.append(pa.field("geometry_geojson", pa.string(), nullable=False))


_MAX_ARRAY_BYTES = 2**31 - 1  # what the 32-bit offsets of a string array address


def value_offsets(values: pa.Array) -> Int32s | Int64s:
    """Where each value of a string/binary array starts in its data buffer, and where the last one ends."""
    wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    data = values.buffers()[1]
    offsets: Int32s | Int64s = np.frombuffer(data, dtype=np.int64) if wide else np.frombuffer(data, dtype=np.int32)
    return offsets[values.offset : values.offset + len(values) + 1]


def utf8_column(texts: pa.Array) -> pa.ChunkedArray:
    """large_binary UTF-8 texts as the published string type: one chunk, or more if they pass 2 GiB."""
    if len(texts) == 0:
        return pa.chunked_array([], pa.string())
    ends = value_offsets(texts)
    chunks, start = [], 0
    while start < len(texts):
        end = max(int(np.searchsorted(ends, ends[start] + _MAX_ARRAY_BYTES, side="right")) - 1, start + 1)
        chunks.append(texts[start:end].cast(pa.string()))
        start = end
    return pa.chunked_array(chunks, pa.string())
