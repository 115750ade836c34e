"""Per-ring loops of the geometry checks, compiled: the star-shaped validity shortcut and ring orientation."""

from __future__ import annotations

import math

import numba

from geospatial_pipeline.core import kernel_cache

kernel_cache.configure()  # before any kernel is defined: see kernel_cache


@numba.njit(cache=True, nogil=True)
def star_rings(coords, starts, ends, margin, out):
    """spatial.star_shaped's test for each ring coords[starts[k]:ends[k]] (closed, 4+ vertices) into out[k]:
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
def ring_orientation(coords, ring_offsets, ccw, unsure):
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
