"""Per-ring loops of the geometry checks, compiled: the star-shaped validity shortcut and ring orientation."""

from __future__ import annotations

import math

import numba
import numpy as np
import shapely

from geospatial_pipeline.core.arrays import Bools, Float64s, Int64s
from geospatial_pipeline.core.geometry.shapes import POLYGONAL, Shapes, ranges


@numba.njit(cache=True, nogil=True)
def star_rings(coords: Float64s, starts: Int64s, ends: Int64s, margin: float, out: Bools) -> None:
    """star_shaped's test for each ring coords[starts[k]:ends[k]] (closed, 4+ vertices) into out[k]:
    seen from the mean of its distinct vertices, every edge turns the same way by more than `margin` and
    less than a half turn minus it, and the turns add up to one full turn."""
    two_pi = 2.0 * math.pi
    for k in range(len(starts)):
        first, stop = starts[k], ends[k]
        last = stop - 1
        out[k] = False
        if coords[first, 0] != coords[last, 0] or coords[first, 1] != coords[last, 1]:
            continue
        cx = 0.0
        cy = 0.0
        for v in range(first, last):  # the distinct vertices: all but the closing one
            cx += coords[v, 0]
            cy += coords[v, 1]
        cx /= last - first
        cy /= last - first
        ok = True
        positive = 0
        total = 0.0
        previous = 0.0
        for v in range(first, stop):
            dx, dy = coords[v, 0] - cx, coords[v, 1] - cy
            if dx == 0.0 and dy == 0.0:  # a vertex on the centre
                ok = False
                break
            angle = math.atan2(dy, dx)
            if v > first:
                turn = (angle - previous + math.pi) % two_pi - math.pi
                if not (margin < abs(turn) < math.pi - margin):
                    ok = False
                    break
                positive += turn > 0.0
                total += turn
            previous = angle
        edges = last - first
        out[k] = ok and (positive == 0 or positive == edges) and abs(abs(total) - two_pi) < 1e-6


@numba.njit(cache=True, nogil=True)
def ring_orientation(coords: Float64s, ring_offsets: Int64s, ccw: Bools, unsure: Bools) -> None:
    """Per ring: counterclockwise (shoelace sum about its first vertex > 0), and whether the sum is too
    small against the ring's extent to trust (|sum| <= 1e-9 * width * height), for GEOS to decide."""
    for r in range(len(ring_offsets) - 1):
        first, stop = ring_offsets[r], ring_offsets[r + 1]
        x0, y0 = coords[first, 0], coords[first, 1]
        twice_area = 0.0
        xmin = xmax = ymin = ymax = 0.0
        x_prev, y_prev = 0.0, 0.0
        for v in range(first, stop):
            x, y = coords[v, 0] - x0, coords[v, 1] - y0
            if v > first:
                twice_area += x_prev * y - x * y_prev
            xmin, xmax = min(xmin, x), max(xmax, x)
            ymin, ymax = min(ymin, y), max(ymax, y)
            x_prev, y_prev = x, y
        ccw[r] = twice_area > 0.0
        unsure[r] = abs(twice_area) <= 1e-9 * (xmax - xmin) * (ymax - ymin)


# Least turn, and least short of a half turn, of an edge seen from the centre: far above the error of the
# angles (about 1e-15 rad: the differences to the centre are correctly rounded, atan2 is within an ulp).
STAR_MARGIN = 1e-9


def star_shaped(shapes: Shapes) -> Bools:
    """Per geometry: a polygon of a single ring going round the mean of its vertices in one direction,
    which makes it simple and so valid as GEOS judges it. False means "ask GEOS", not "invalid".

    Seen from that centre every edge turns the same way by more than nothing and less than a half turn,
    and the turns add up to exactly one full turn: the edges then lie in sectors that meet only at shared
    vertices, so no two edges cross or touch elsewhere. Convex and nearly convex boundaries (most fields)
    pass. Holes, several parts and a vertex on the centre are left to GEOS.
    """
    out = np.zeros(len(shapes), dtype=bool)
    rows = np.flatnonzero(np.isin(shapes.kind, POLYGONAL) & (np.diff(shapes.geom_offsets) == 1))
    part = shapes.geom_offsets[rows]
    rows, part = rows[np.diff(shapes.part_offsets)[part] == 1], part[np.diff(shapes.part_offsets)[part] == 1]
    path = shapes.part_offsets[part]
    starts, ends = shapes.path_offsets[path], shapes.path_offsets[path + 1]
    usable = ends - starts >= 4
    rows, starts, ends = rows[usable], starts[usable], ends[usable]
    if len(rows):
        flags = np.empty(len(rows), dtype=bool)
        star_rings(np.ascontiguousarray(shapes.coords), starts, ends, STAR_MARGIN, flags)
        out[rows] = flags
    return out


def oriented(shapes: Shapes) -> Shapes:
    """The same geometries with counterclockwise exterior rings and clockwise holes (RFC 7946, GeoParquet's
    declared orientation), rings reversed in place (the first vertex stays first), as GEOS's
    orient_polygons does; other paths untouched."""
    ring, exterior = shapes.rings
    if not ring.any():
        return shapes
    offsets = shapes.path_offsets
    starts, ends = offsets[:-1], offsets[1:]
    counts = ends - starts
    ccw = np.empty(len(starts), dtype=bool)
    doubtful = np.empty(len(starts), dtype=bool)
    ring_orientation(np.ascontiguousarray(shapes.coords), offsets, ccw, doubtful)
    unsure = np.flatnonzero(doubtful & ring)
    if len(unsure):  # slivers: let GEOS's robust orientation test decide
        verts = ranges(starts[unsure], ends[unsure])
        rings = shapely.linearrings(shapes.coords[verts], indices=np.repeat(np.arange(len(unsure)), counts[unsure]))
        ccw[unsure] = shapely.is_ccw(rings)
    flip = np.flatnonzero(ring & (ccw != exterior))
    if not len(flip):
        return shapes
    order = np.arange(len(shapes.coords), dtype=np.int64)
    verts = ranges(starts[flip], ends[flip])
    order[verts] = np.repeat(starts[flip], counts[flip]) + np.repeat(ends[flip] - 1, counts[flip]) - verts
    return shapes.with_coords(shapes.coords[order])
