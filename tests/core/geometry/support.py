"""Drive the geometry rules the way a partition run does: records as text, parsed, then checked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import mpmath
import numpy as np
import shapely
from pyproj import Geod

from geospatial_pipeline.core.features import ParsedChunk, parse_chunk
from geospatial_pipeline.core.geometry.checks import SpatialResult, check_geometries
from geospatial_pipeline.core.geometry.measures import polygon_measures
from geospatial_pipeline.core.geometry.shapes import from_shapely
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.rules import WGS84, SpatialRules

GEOD = Geod(ellps="WGS84")
PROPERTIES = {"field_id": "F", "arrival_time": "2025-01-02T05:00:00Z", "processing_date": "2025-01-02"}


def feature(geometry, crs: str | None = None) -> bytes:
    props = PROPERTIES if crs is None else {**PROPERTIES, "crs": crs}
    return json.dumps({"type": "Feature", "properties": props, "geometry": geometry}).encode()


def parsed(items: list[tuple[object, str | None]]) -> ParsedChunk:
    texts = [feature(g, c) for g, c in items]
    return parse_chunk(RawChunk("raw/2025-01-02/t.geojsonl", texts, list(range(1, len(texts) + 1))))


@dataclass
class Checked:
    result: SpatialResult
    problems: dict

    def reasons(self, i: int) -> list:
        return [r for r, _ in self.problems.get(i, [])]

    def target(self, i: int) -> shapely.Geometry:
        wkb, _, _ = self.result.encoded(np.array([i]), with_geojson=False)
        return shapely.from_wkb(wkb[0].as_py())

    def lonlat(self, i: int) -> shapely.Geometry:
        _, _, geojson = self.result.encoded(np.array([i]), with_geojson=True)
        return shapely.from_geojson(geojson[0])


def run(items: list[tuple[object, str | None]], rules: SpatialRules | None = None) -> Checked:
    """Parse and check geometries (with a CRS each); problems of reading and of the rules together."""
    chunk = parsed(items)
    crs = np.where(chunk.crs == None, WGS84, chunk.crs)  # noqa: E711 - elementwise comparison
    result = check_geometries(chunk.shapes, chunk.has_z, crs, rules or SpatialRules(), len(items))
    problems = {i: list(r) for i, r in chunk.problems.items()}
    for i, r in result.problems.items():
        problems.setdefault(i, []).extend(r)
    return Checked(result, problems)


def measure(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic area (m²) and perimeter (m) of lon/lat shapely polygons, through the pipeline's measures."""
    shapes = from_shapely(np.asarray(geometries, dtype=object), np.arange(len(geometries)))
    _, exterior = shapes.rings
    return polygon_measures(shapes.coords, shapes.path_offsets, exterior, shapes.path_geometry, len(shapes))


def precise_ring_area(ring: np.ndarray, pieces: int = 32) -> mpmath.mpf:
    """A ring's area at 40 digits: each edge resolved into `pieces` points on its geodesic (Geod.npts), then
    the equal-area plane's shoelace, whose straight pieces are then within ~1e-12 of the geodesics."""
    mpmath.mp.dps = 40
    a, f = mpmath.mpf(6378137), 1 / mpmath.mpf("298.257223563")
    e2 = f * (2 - f)
    e = mpmath.sqrt(e2)
    lon, lat = [ring[0, 0]], [ring[0, 1]]
    for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:], strict=True):
        for x, y in GEOD.npts(x1, y1, x2, y2, pieces - 1):
            lon.append(x)
            lat.append(y)
        lon.append(x2)
        lat.append(y2)

    def authalic_y(degrees: float) -> mpmath.mpf:
        s = mpmath.sin(mpmath.radians(mpmath.mpf(degrees)))
        return a * (1 - e2) * (s / (1 - e2 * s * s) - mpmath.log((1 - e * s) / (1 + e * s)) / (2 * e)) / 2

    xs = [a * mpmath.radians(mpmath.mpf(v)) for v in lon]
    ys = [authalic_y(v) for v in lat]
    return abs(sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(len(xs) - 1)) / 2)
