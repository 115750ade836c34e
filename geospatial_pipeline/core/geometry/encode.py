"""The published encodings of accepted geometries: WKB (geoarrow-pyarrow, from the flat arrays, without a
shapely object or a bytes object per geometry), bounding boxes, and RFC 7946 GeoJSON text (shapely)."""

from __future__ import annotations

import geoarrow.pyarrow as ga
import numpy as np
import pyarrow as pa
import shapely

from geospatial_pipeline.core.arrays import Float64s, Int32s, Int64s
from geospatial_pipeline.core.geometry.shapes import (
    LINESTRING,
    MULTILINESTRING,
    MULTIPOINT,
    MULTIPOLYGON,
    POINT,
    POLYGON,
    Shapes,
)


def wkb(shapes: Shapes) -> pa.Array:
    """ISO WKB (2D, little-endian) of each geometry, in order, as one binary array: the bytes shapely.to_wkb
    writes (tests/core/test_encode.py)."""
    if len(shapes) == 0:
        return pa.array([], pa.binary())
    parts: list[pa.Array] = []
    order: list[Int64s] = []
    for kind in np.unique(shapes.kind).tolist():
        rows = np.flatnonzero(shapes.kind == kind)
        sub = shapes if len(rows) == len(shapes) else shapes.take(rows)
        parts.append(ga.as_wkb(_native(sub, kind)).storage)
        order.append(rows)
    if len(parts) == 1:
        return parts[0]
    at = np.empty(len(shapes), dtype=np.int64)
    at[np.concatenate(order)] = np.arange(len(shapes))
    return pa.concat_arrays([p.cast(pa.large_binary()) for p in parts]).take(pa.array(at)).cast(pa.binary())


def _native(shapes: Shapes, kind: int) -> pa.Array:
    """A geoarrow array (separated x/y) of geometries all of type `kind`."""
    x, y = np.ascontiguousarray(shapes.coords[:, 0]), np.ascontiguousarray(shapes.coords[:, 1])

    def i32(a: Int64s) -> Int32s:
        return a.astype(np.int32)

    if kind == POINT:
        return ga.point().from_geobuffers(None, x, y)
    if kind == LINESTRING:
        return ga.linestring().from_geobuffers(None, i32(shapes.vertex_offsets), x, y)
    if kind == MULTIPOINT:
        return ga.multipoint().from_geobuffers(None, i32(shapes.vertex_offsets), x, y)
    if kind == POLYGON:
        return ga.polygon().from_geobuffers(None, i32(shapes.part_offsets), i32(shapes.path_offsets), x, y)
    if kind == MULTILINESTRING:
        lines = shapes.part_offsets[shapes.geom_offsets]
        return ga.multilinestring().from_geobuffers(None, i32(lines), i32(shapes.path_offsets), x, y)
    if kind == MULTIPOLYGON:
        return ga.multipolygon().from_geobuffers(
            None, i32(shapes.geom_offsets), i32(shapes.part_offsets), i32(shapes.path_offsets), x, y
        )
    raise ValueError(f"no geoarrow type for geometry kind {kind}")


def bounds(shapes: Shapes) -> Float64s:
    """(xmin, ymin, xmax, ymax) of each geometry; NaN is skipped as GEOS's envelope does, empty is NaN."""
    out = np.full((len(shapes), 4), np.nan)
    offsets = shapes.vertex_offsets
    filled = np.flatnonzero(np.diff(offsets) > 0)
    if len(filled):
        starts = offsets[filled]
        x, y = shapes.coords[:, 0], shapes.coords[:, 1]
        out[filled] = np.column_stack(
            [
                np.fmin.reduceat(x, starts),
                np.fmin.reduceat(y, starts),
                np.fmax.reduceat(x, starts),
                np.fmax.reduceat(y, starts),
            ]
        )
    return out


def geojson(shapes: Shapes) -> list[str]:
    """RFC 7946 GeoJSON text of each geometry, as shapely (GEOS) writes it."""
    return list(shapely.to_geojson(shapes.to_shapely()))
