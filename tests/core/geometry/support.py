"""Drive the geometry rules the way a partition run does: records as text, parsed, then checked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import shapely

from geospatial_pipeline.core.features import ParsedChunk, parse_chunk
from geospatial_pipeline.core.geometry.checks import SpatialResult, check_geometries
from geospatial_pipeline.core.geometry.measures import polygon_measures
from geospatial_pipeline.core.geometry.shapes import from_shapely
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.rules import WGS84, SpatialRules

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
