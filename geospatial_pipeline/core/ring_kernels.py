"""Per-ring area and length on the WGS84 ellipsoid, one compiled loop per ring.

The formulas are spatial.rings_area_perimeter's; in numpy they took a dozen whole-array passes (radians,
sines, square roots, a logarithm, differences, a bincount) with a temporary array each. Here each vertex is
computed once and both of its segments use it, in registers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from geospatial_pipeline.core import kernel_cache

kernel_cache.configure()  # before any kernel is defined: see kernel_cache


@numba.njit(cache=True, nogil=True)
def _vertex(lon, lat, a, e2, e):
    """A vertex's longitude (rad), sine of latitude, distance from the axis, height, and authalic q."""
    s = math.sin(math.radians(lat))
    w = 1.0 - e2 * s * s
    nu = a / math.sqrt(w)
    q = (1.0 - e2) * (s / w - math.log((1.0 - e * s) / (1.0 + e * s)) / (2.0 * e))
    return math.radians(lon), s, nu * math.sqrt(1.0 - s * s), nu * (1.0 - e2) * s, q


@numba.njit(cache=True, nogil=True)
def ring_measures(lonlat, ring_offsets, a, e2, e, limit_sq, area, length, far_vertex, far_ring):
    """Signed area (m², equal-area plane, CCW positive) and length (m) of each ring into `area`/`length`.

    A segment whose chord exceeds sqrt(limit_sq) is left out of `length` and listed instead (its first
    vertex and its ring, in far_vertex/far_ring) for the caller to measure as a geodesic; returns how many.
    """
    far = 0
    arc = 24.0 * a * a * (1.0 - e2)
    for r in range(len(ring_offsets) - 1):
        first, stop = ring_offsets[r], ring_offsets[r + 1]
        area[r] = 0.0
        length[r] = 0.0
        if stop - first < 2:
            continue
        lam0, s_prev, h_prev, z_prev, q0 = _vertex(lonlat[first, 0], lonlat[first, 1], a, e2, e)
        lam_prev, px_prev, py_prev = lam0, 0.0, 0.0
        cross_sum = 0.0
        total = 0.0
        for v in range(first + 1, stop):
            lam, s, h, z, q = _vertex(lonlat[v, 0], lonlat[v, 1], a, e2, e)
            # Chord between the vertices, free of cancellation for short segments, plus the arc's excess.
            half = math.sin(0.5 * (lam - lam_prev))
            chord_sq = (h - h_prev) ** 2 + 4.0 * h_prev * h * half * half + (z - z_prev) ** 2
            if chord_sq > limit_sq:
                far_vertex[far] = v - 1
                far_ring[far] = r
                far += 1
            else:
                mid = 0.5 * (s_prev + s)
                wm = 1.0 - e2 * mid * mid
                total += math.sqrt(chord_sq) * (1.0 + chord_sq * (wm * wm) / arc)
            # Cylindrical equal-area coordinates about the ring's first vertex: the shoelace term.
            px, py = lam - lam0, q - q0
            cross_sum += px_prev * py - px * py_prev
            lam_prev, s_prev, h_prev, z_prev, px_prev, py_prev = lam, s, h, z, px, py
        area[r] = cross_sum * (0.25 * a * a)
        length[r] = total
    return far


def measures(
    lonlat: np.ndarray, ring_offsets: np.ndarray, a: float, e2: float, e: float, limit_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(signed area, length without far segments, far segments' first vertices, their rings) per ring."""
    nrings = len(ring_offsets) - 1
    area, length = np.empty(nrings), np.empty(nrings)
    far_vertex = np.empty(max(len(lonlat) - 1, 0), dtype=np.int64)
    far_ring = np.empty_like(far_vertex)
    coords = np.ascontiguousarray(lonlat, dtype=np.float64)
    offsets = np.ascontiguousarray(ring_offsets, dtype=np.int64)
    far = ring_measures(coords, offsets, a, e2, e, limit_m * limit_m, area, length, far_vertex, far_ring)
    return area, length, far_vertex[:far], far_ring[:far]


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
