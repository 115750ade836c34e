"""Every spatial rule, once, in order, on a chunk's geometries: size, emptiness, 2D, type, validity (GEOS,
or the star-shaped shortcut), CRS known, area of use, configured bounds; then orientation, reprojection to
the target CRS and the geodesic measures of what is accepted. A geometry keeps its first failing rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

from geospatial_pipeline.core.arrays import Bools, Float64s, Int64s, Objects
from geospatial_pipeline.core.geometry import encode
from geospatial_pipeline.core.geometry.crs import outside_area_of_use, resolve_crs, transform_xy, transformer
from geospatial_pipeline.core.geometry.kernels import oriented, star_shaped
from geospatial_pipeline.core.geometry.measures import polygon_measures
from geospatial_pipeline.core.geometry.shapes import POLYGONAL, TYPE_NAMES, Shapes, from_shapely, ranges
from geospatial_pipeline.core.reasons import Problems, Reason, Verdicts
from geospatial_pipeline.core.rules import WGS84, SpatialRules


@dataclass
class SpatialResult:
    """The accepted geometries (by record) and per-record outputs; entries of other records are blank."""

    lonlat: Shapes  # accepted geometries in lon/lat, oriented
    target: Shapes  # the same in the target CRS, oriented
    source_crs: Objects  # per record: short name of its CRS (str), e.g. "EPSG:32633"
    area_ha: Float64s
    perimeter_m: Float64s
    repaired: Bools
    problems: Problems
    star_hits: int = 0  # geometries the star-shaped shortcut found valid without asking GEOS

    def encoded(self, records: Int64s, with_geojson: bool) -> tuple[pa.Array, Float64s, list[str] | None]:
        """WKB and bounds of the target-CRS geometry of each record (accepted, ascending) and, if asked,
        the RFC 7946 GeoJSON of its lon/lat geometry."""
        at = np.searchsorted(self.target.index, records)
        if len(records) and not (self.target.index[np.minimum(at, len(self.target) - 1)] == records).all():
            raise KeyError("geometry outputs asked for records that were not accepted")
        target = self.target.take(at)
        geojson = encode.geojson(self.lonlat.take(at)) if with_geojson else None
        return encode.wkb(target), encode.bounds(target), geojson


def check_geometries(
    shapes: Shapes, has_z: Bools, crs_names: Objects, rules: SpatialRules, records: int
) -> SpatialResult:
    """Judge `shapes` (index: record) with per-record CRS names; `records` is the chunk's record count."""
    verdicts = Verdicts(len(shapes), shapes.index)
    vertices = np.diff(shapes.vertex_offsets)
    verdicts.reject(
        vertices > rules.max_vertices, Reason.TOO_MANY_VERTICES, f"more than max_vertices={rules.max_vertices} vertices"
    )
    verdicts.reject(vertices == 0, Reason.GEOMETRY_EMPTY, "geometry is empty")
    verdicts.reject(has_z, Reason.GEOMETRY_NOT_2D, "geometry has Z coordinates; only 2D is accepted")
    allowed = np.isin(shapes.kind, [TYPE_NAMES.index(t) for t in rules.allowed_types])
    not_allowed = [f"{TYPE_NAMES[k]} is not one of {list(rules.allowed_types)}" for k in shapes.kind[~allowed]]
    verdicts.reject(~allowed, Reason.GEOMETRY_TYPE_NOT_ALLOWED, not_allowed)
    shapes, repaired_records, star_hits = _valid(shapes, verdicts, rules)

    crs_verdicts = Verdicts(len(shapes), shapes.index)
    source_crs = np.full(records, "", dtype=object)
    lonlat = shapes.coords
    names = crs_names[shapes.index].astype(str)
    groups = [(text, names == text, *resolve_crs(text)) for text in np.unique(names).tolist()]
    offsets = shapes.vertex_offsets
    for crs_text, group, crs, _ in groups:
        if crs is not None and transformer(crs_text, WGS84) is not None:  # lon/lat groups (most) stay as they are
            rows = np.flatnonzero(group)
            vertices = ranges(offsets[rows], offsets[rows + 1])
            lonlat = lonlat.copy() if lonlat is shapes.coords else lonlat
            lonlat[vertices] = transform_xy(shapes.coords[vertices], crs_text, WGS84)
    source_bounds = encode.bounds(shapes)
    lonlat_bounds = source_bounds if lonlat is shapes.coords else encode.bounds(shapes.with_coords(lonlat))
    for crs_text, group, crs, name in groups:
        if crs is None:
            crs_verdicts.reject(group, Reason.CRS_UNKNOWN, f"CRS {crs_text!r} is not known to PROJ: {name}")
            continue
        source_crs[shapes.index[group]] = name
        outside, message = outside_area_of_use(source_bounds[group], lonlat_bounds[group], crs, crs_text)
        mask = np.zeros(len(shapes), dtype=bool)
        mask[np.flatnonzero(group)[outside]] = True
        crs_verdicts.reject(mask, Reason.OUTSIDE_CRS_AREA_OF_USE, message)
    minx, miny, maxx, maxy = rules.bounds
    b = lonlat_bounds
    inside = (b[:, 0] >= minx) & (b[:, 1] >= miny) & (b[:, 2] <= maxx) & (b[:, 3] <= maxy)
    crs_verdicts.reject(
        ~inside, Reason.OUTSIDE_BOUNDS, f"geometry is not within the configured bounds {list(rules.bounds)}"
    )

    keep = np.flatnonzero(crs_verdicts.ok)
    accepted = oriented(shapes.with_coords(lonlat).take(keep))
    target = accepted
    if transformer(WGS84, rules.target_crs) is not None:
        target = oriented(accepted.with_coords(transform_xy(accepted.coords, WGS84, rules.target_crs)))
    area, perimeter = _measures(accepted, records)
    repaired = np.zeros(records, dtype=bool)
    repaired[repaired_records] = True
    problems = {**verdicts.problems, **crs_verdicts.problems}
    return SpatialResult(accepted, target, source_crs, area / 10_000.0, perimeter, repaired, problems, star_hits)


def _valid(shapes: Shapes, verdicts: Verdicts, rules: SpatialRules) -> tuple[Shapes, Int64s, int]:
    """Reject (or, with repair_invalid, repair) what GEOS finds invalid; the shortcut spares GEOS the
    geometries that are provably simple. Returns the geometries still accepted (repaired ones replaced),
    the records repaired, and the shortcut's hits."""
    ok = verdicts.ok.copy()
    star = star_shaped(shapes) & ok
    asked = np.flatnonzero(ok & ~star)
    objects = shapes.take(asked).to_shapely()
    invalid = ~shapely.is_valid(objects)
    bad_rows, bad = asked[invalid], objects[invalid]
    repaired = np.zeros(0, dtype=np.int64)
    fixed_shapes: list[Shapes] = []
    if len(bad_rows):
        why = shapely.is_valid_reason(bad)
        if rules.repair_invalid:
            fixed = _repair(bad)
            allowed = [shapely.GeometryType[t.upper()].value for t in rules.allowed_types]
            usable = np.isin(shapely.get_type_id(fixed), allowed) & shapely.is_valid(fixed) & ~shapely.is_empty(fixed)
            failed = np.zeros(len(shapes), dtype=bool)
            failed[bad_rows[~usable]] = True
            verdicts.reject(failed, Reason.GEOMETRY_INVALID, [f"{w}; repair failed" for w in why[~usable]])
            repaired = shapes.index[bad_rows[usable]]
            fixed_shapes.append(from_shapely(fixed[usable], repaired))
            verdicts.ok[bad_rows[usable]] = False  # replaced by their repair below
        else:
            mask = np.zeros(len(shapes), dtype=bool)
            mask[bad_rows] = True
            verdicts.reject(mask, Reason.GEOMETRY_INVALID, list(why))
    kept = shapes.take(np.flatnonzero(verdicts.ok))
    return Shapes.concat([kept, *fixed_shapes]), repaired, int(star.sum())


def _repair(geoms: Objects) -> Objects:
    """make_valid, keeping only the polygonal part (a bow-tie becomes two triangles)."""
    fixed: Objects = shapely.make_valid(geoms)
    collections = np.flatnonzero(shapely.get_type_id(fixed) == 7)
    for k in collections.tolist():
        parts = shapely.get_parts(fixed[k])
        fixed[k] = shapely.union_all(parts[np.isin(shapely.get_type_id(parts), [3, 6])])
    return fixed


def _measures(accepted: Shapes, records: int) -> tuple[Float64s, Float64s]:
    """Geodesic area (m²) and perimeter (m) per record; lines and points have neither (0)."""
    area, perimeter = np.full(records, np.nan), np.full(records, np.nan)
    area[accepted.index], perimeter[accepted.index] = 0.0, 0.0
    polygonal = np.flatnonzero(np.isin(accepted.kind, POLYGONAL))
    if len(polygonal):
        polygons = accepted.take(polygonal)
        _, exterior = polygons.rings
        a, p = polygon_measures(polygons.coords, polygons.path_offsets, exterior, polygons.path_geometry, len(polygons))
        area[polygons.index], perimeter[polygons.index] = a, p
    return area, perimeter
