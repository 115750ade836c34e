"""The `geometry` member of each scanned record → Shapes, or the reason it is not a geometry.

What GEOS's GeoJSON reader would refuse is refused here in the same terms: a geometry that is not an
object, of no known type, whose coordinates are not nested arrays of numbers as deep as its type needs,
positions of fewer than two numbers, rings of fewer than four positions or not closed, lines of fewer than
two. Positions with a third number are kept (their x and y) and flagged, for the 2D rule to reject.
"""

from __future__ import annotations

import numpy as np

from geospatial_pipeline.core import geometry_scan, scan
from geospatial_pipeline.core.arrays import Bools, Int64s
from geospatial_pipeline.core.geometry.shapes import (
    COLLECTION,
    DEPTH,
    LINESTRING,
    MULTILINESTRING,
    MULTIPOINT,
    TYPE_NAMES,
    Shapes,
    any_per,
    offsets_of,
    ranges,
)
from geospatial_pipeline.core.reasons import Reason, Verdicts

_COORDINATE_PROBLEMS = {
    geometry_scan.C_ABSENT: "geometry has no coordinates",
    geometry_scan.C_NOT_ARRAY: "coordinates are not an array",
    geometry_scan.C_NOT_NUMBER: "coordinates hold something other than arrays of numbers",
    geometry_scan.C_UNEVEN: "coordinates nest arrays and numbers unevenly",
    geometry_scan.C_TOO_DEEP: "coordinates nest deeper than any geometry type",
}


def read_geometries(sc: scan.Scanned, verdicts: Verdicts) -> tuple[Shapes, Bools]:
    """Shapes of the records `verdicts` accepts (verdicts.rows are the scan's records), rejecting those
    without a readable geometry; and per shape, whether it had positions of three or more numbers."""
    rows = verdicts.rows
    kind, gtype, state = sc.geom_kind[rows], sc.geom_type[rows].astype(np.int64), sc.coords[rows]
    reject = verdicts.reject
    reject((kind == scan.ABSENT) | (kind == scan.NULL), Reason.GEOMETRY_MISSING, "Feature geometry is null or absent")
    reject(kind == scan.OTHER, Reason.GEOMETRY_UNPARSEABLE, "geometry is not a JSON object")
    reject(gtype < 0, Reason.GEOMETRY_UNPARSEABLE, "geometry type is missing or not a GeoJSON geometry type")
    reject(gtype == COLLECTION, Reason.GEOMETRY_TYPE_NOT_ALLOWED, "GeometryCollection is not an accepted type")
    for code, message in _COORDINATE_PROBLEMS.items():
        reject(state == code, Reason.GEOMETRY_UNPARSEABLE, message)
    depth = DEPTH[np.clip(gtype, 0, len(DEPTH) - 1)]
    leaf, deepest = sc.leaf_level[rows], sc.deepest[rows]
    wrong = np.flatnonzero(verdicts.ok & (((leaf >= 0) & (leaf != depth)) | ((leaf < 0) & (deepest >= depth))))
    reject(
        np.isin(np.arange(len(rows)), wrong),
        Reason.GEOMETRY_UNPARSEABLE,
        [f"{TYPE_NAMES[gtype[i]]} coordinates must nest {depth[i]} arrays deep" for i in wrong],
    )
    number_offsets = np.append(sc.number_lo, sc.number_hi[-1:] if len(sc.number_hi) else 0)
    nonfinite = any_per(~np.isfinite(sc.numbers), number_offsets)
    reject(nonfinite[rows], Reason.GEOMETRY_NON_FINITE, "coordinates contain NaN or Infinity")

    blocks, flags = [], []
    for d in (1, 2, 3, 4):
        at = np.flatnonzero(verdicts.ok & (depth == d))
        if len(at):
            shapes, has_z = _build(sc, rows[at], gtype[at], d, at, verdicts)
            blocks.append(shapes)
            flags.append(has_z)
    shapes = Shapes.concat(blocks)
    has_z = np.zeros(len(rows), dtype=bool)
    for b, z in zip(blocks, flags, strict=True):
        has_z[b.index] = z
    return shapes, has_z[shapes.index]


def _build(
    sc: scan.Scanned, records: Int64s, gtype: Int64s, d: int, at: Int64s, verdicts: Verdicts
) -> tuple[Shapes, Bools]:
    """Shapes (index: positions `at` in verdicts) of records whose coordinates nest `d` deep."""
    lo, hi = sc.level_lo[records], sc.level_hi[records]
    positions = hi[:, d - 1] - lo[:, d - 1]
    arity = sc.levels[d - 1][ranges(lo[:, d - 1], hi[:, d - 1])].astype(np.int64)
    position_offsets = offsets_of(positions)
    short = any_per(arity < 2, position_offsets)
    mask = np.zeros(len(verdicts.ok), dtype=bool)
    mask[at[short]] = True
    verdicts.reject(mask, Reason.GEOMETRY_UNPARSEABLE, "a position needs at least two numbers")
    if short.any():
        usable = ~short
        return _build(sc, records[usable], gtype[usable], d, at[usable], verdicts)
    has_z = any_per(arity > 2, position_offsets)
    owner = np.repeat(np.arange(len(records)), positions)
    within = offsets_of(arity)[:-1] - np.repeat(offsets_of(arity)[position_offsets[:-1]], positions)
    first = sc.number_lo[records][owner] + within
    coords = np.column_stack([sc.numbers[first], sc.numbers[first + 1]])
    n = len(records)
    ones = np.ones(n, dtype=np.int64)
    if d == 1:
        paths, parts, geoms = ones, ones, ones
    elif d == 2:
        count = sc.levels[0][lo[:, 0]].astype(np.int64)
        multipoint = gtype == MULTIPOINT
        parts = np.where(multipoint, count, 1)  # a MultiPoint's points are paths of one vertex
        paths = np.where(np.repeat(multipoint, parts), 1, np.repeat(count, parts))
        geoms = ones
    elif d == 3:
        paths = sc.levels[1][ranges(lo[:, 1], hi[:, 1])].astype(np.int64)
        parts, geoms = sc.levels[0][lo[:, 0]].astype(np.int64), ones
    else:
        paths = sc.levels[2][ranges(lo[:, 2], hi[:, 2])].astype(np.int64)
        parts = sc.levels[1][ranges(lo[:, 1], hi[:, 1])].astype(np.int64)
        geoms = sc.levels[0][lo[:, 0]].astype(np.int64)
    shapes = Shapes(at, gtype.astype(np.int8), coords, offsets_of(paths), offsets_of(parts), offsets_of(geoms))
    bad = _bad_paths(shapes)
    if any(len(where) for where, _ in bad):
        for where, message in bad:
            mask = np.zeros(len(verdicts.ok), dtype=bool)
            mask[at[where]] = True
            verdicts.reject(mask, Reason.GEOMETRY_UNPARSEABLE, message)
        keep = np.flatnonzero(verdicts.ok[at])
        shapes, has_z = shapes.take(keep), has_z[keep]
    return shapes, has_z


def _bad_paths(shapes: Shapes) -> list[tuple[Int64s, str]]:
    """Geometries (positions) with rings or lines GEOS would not read, by message."""
    sizes = np.diff(shapes.path_offsets)
    geometry = shapes.path_geometry
    vertices = np.diff(shapes.vertex_offsets)
    ring, _ = shapes.rings
    line = np.isin(shapes.kind, (LINESTRING, MULTILINESTRING))[geometry]
    nonempty = (vertices > 0)[geometry]
    first = shapes.coords[np.minimum(shapes.path_offsets[:-1], max(len(shapes.coords) - 1, 0))]
    last = shapes.coords[np.maximum(shapes.path_offsets[1:] - 1, 0)]
    open_end = (first != last).any(axis=1) if len(shapes.coords) else np.zeros(len(sizes), dtype=bool)
    return [
        (np.unique(geometry[flags]), message)
        for flags, message in (
            (ring & nonempty & (sizes < 4), "a polygon ring needs at least four positions"),
            (ring & nonempty & (sizes >= 4) & open_end, "a polygon ring must end where it starts"),
            (line & nonempty & (sizes < 2), "a line needs at least two positions"),
        )
    ]
