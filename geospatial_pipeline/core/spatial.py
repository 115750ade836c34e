"""Geometry parsing, checks, reprojection and geodesic measures, vectorised with Shapely 2 and pyproj.

Every function takes whole arrays. The only per-record Python left is for the rare geometries that cross
the antimeridian, whose geodesic measures need pyproj.Geod's ring-by-ring path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError

from geospatial_pipeline.core.records import Reason

WGS84 = "EPSG:4326"
GEOD = Geod(ellps="WGS84")
# Cylindrical equal-area on the WGS84 ellipsoid: planar area there equals ellipsoidal area, so area is
# one vectorised shapely call instead of a Geod call per ring (agrees with Geod to ~1e-6 on fields).
_EQUAL_AREA = "+proj=cea +ellps=WGS84 +units=m +no_defs"
# UTM and other projected CRSs are routinely used a little past their zone; beyond this it's a label error.
AREA_OF_USE_MARGIN_DEG = 2.0

_TYPE_IDS = {
    "Point": 0,
    "LineString": 1,
    "Polygon": 3,
    "MultiPoint": 4,
    "MultiLineString": 5,
    "MultiPolygon": 6,
}
_TYPE_NAMES = {v: k for k, v in _TYPE_IDS.items()} | {2: "LinearRing", 7: "GeometryCollection"}


@dataclass(frozen=True)
class SpatialRules:
    target_crs: str = WGS84
    bounds: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    allowed_types: tuple[str, ...] = ("Polygon", "MultiPolygon")
    repair_invalid: bool = False
    max_vertices: int = 100_000


@dataclass
class SpatialResult:
    """Per-record outputs; arrays align with the input, entries of rejected records are meaningless."""

    geometry: np.ndarray  # in the target CRS
    geometry_wgs84: np.ndarray
    source_crs: np.ndarray  # normalised identifier, e.g. "EPSG:32633"
    area_ha: np.ndarray
    perimeter_m: np.ndarray
    repaired: np.ndarray
    reasons: dict[int, list[tuple[Reason, str]]]


@lru_cache(maxsize=256)
def resolve_crs(text: str) -> tuple[CRS | None, str]:
    """A CRS from any user input pyproj understands, and a short name for it (or the error)."""
    try:
        crs = CRS.from_user_input(text)
    except (CRSError, TypeError, ValueError) as exc:
        return None, str(exc)
    authority = crs.to_authority(min_confidence=90)
    return crs, ":".join(authority) if authority else crs.name


@lru_cache(maxsize=256)
def _transformer(source: str, target: str) -> Transformer | None:
    """One Transformer per CRS pair; None when the two are the same x/y space."""
    src, _ = resolve_crs(source)
    dst, _ = resolve_crs(target)
    if src is None or dst is None or _same_xy(src, dst):
        return None
    return Transformer.from_crs(src, dst, always_xy=True)


def _same_xy(a: CRS, b: CRS) -> bool:
    if a == b:
        return True
    wgs84 = CRS.from_epsg(4326)
    return a.is_geographic and b.is_geographic and a.equals(wgs84, ignore_axis_order=True) and b.equals(
        wgs84, ignore_axis_order=True
    )


def transform(geometries: np.ndarray, source: str, target: str) -> np.ndarray:
    """Reproject an array of geometries, x/y order throughout (GeoJSON's lon/lat)."""
    tr = _transformer(source, target)
    if tr is None or len(geometries) == 0:
        return geometries

    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geometries, apply)


def parse_geometries(texts: list[bytes | None]) -> tuple[np.ndarray, dict[int, str]]:
    """GeoJSON geometry texts → shapely array; unparseable ones get GEOS's own message."""
    arr = np.array([t.decode() if t is not None else None for t in texts], dtype=object)
    present = np.flatnonzero(arr != None)  # noqa: E711 - elementwise comparison
    geoms = np.full(len(arr), None, dtype=object)
    geoms[present] = shapely.from_geojson(arr[present], on_invalid="ignore")
    errors: dict[int, str] = {}
    for i in present[geoms[present] == None]:  # noqa: E711
        try:
            shapely.from_geojson(arr[i], on_invalid="raise")
            errors[int(i)] = "GeoJSON geometry could not be read"
        except Exception as exc:  # shapely raises GEOSException; messages vary by GEOS version
            errors[int(i)] = str(exc)
    return geoms, errors


def check_geometries(
    texts: list[bytes | None],
    crs_names: np.ndarray,
    skip: np.ndarray,
    rules: SpatialRules,
) -> SpatialResult:
    """Parse, check, repair, reproject and measure; rows in `skip` are left untouched."""
    n = len(texts)
    reasons: dict[int, list[tuple[Reason, str]]] = {}
    ok = ~skip.copy()

    def reject(mask: np.ndarray, reason: Reason, messages) -> None:
        for j, i in enumerate(np.flatnonzero(mask)):
            msg = messages if isinstance(messages, str) else messages[j]
            reasons.setdefault(int(i), []).append((reason, msg))
        ok[mask] = False

    missing = np.array([t is None for t in texts], dtype=bool)
    reject(ok & missing, Reason.GEOMETRY_MISSING, "Feature geometry is null or absent")
    geoms, parse_errors = parse_geometries([t if o else None for t, o in zip(texts, ok, strict=True)])
    bad_parse = np.zeros(n, dtype=bool)
    bad_parse[list(parse_errors)] = True
    reject(ok & bad_parse, Reason.GEOMETRY_UNPARSEABLE, [parse_errors[i] for i in np.flatnonzero(ok & bad_parse)])

    counts = np.zeros(n, dtype=np.int64)
    counts[ok] = shapely.get_num_coordinates(geoms[ok])
    too_many = ok & (counts > rules.max_vertices)
    reject(too_many, Reason.TOO_MANY_VERTICES, f"more than max_vertices={rules.max_vertices} vertices")

    reject(ok & _non_finite(geoms, ok), Reason.GEOMETRY_NON_FINITE, "coordinates contain NaN or Infinity")
    empty = np.zeros(n, dtype=bool)
    empty[ok] = shapely.is_empty(geoms[ok])
    reject(empty, Reason.GEOMETRY_EMPTY, "geometry is empty")
    has_z = np.zeros(n, dtype=bool)
    has_z[ok] = shapely.has_z(geoms[ok])
    reject(has_z, Reason.GEOMETRY_NOT_2D, "geometry has Z coordinates; only 2D is accepted")

    type_ids = np.full(n, -1)
    type_ids[ok] = shapely.get_type_id(geoms[ok])
    allowed_ids = [_TYPE_IDS[t] for t in rules.allowed_types]
    wrong_type = ok & ~np.isin(type_ids, allowed_ids)
    reject(
        wrong_type,
        Reason.GEOMETRY_TYPE_NOT_ALLOWED,
        [f"{_TYPE_NAMES.get(int(t), t)} is not one of {list(rules.allowed_types)}" for t in type_ids[wrong_type]],
    )

    repaired = np.zeros(n, dtype=bool)
    invalid = np.zeros(n, dtype=bool)
    invalid[ok] = ~shapely.is_valid(geoms[ok])
    if invalid.any():
        why = shapely.is_valid_reason(geoms[invalid])
        if rules.repair_invalid:
            fixed = _repair(geoms[invalid])
            fixed_ok = np.isin(shapely.get_type_id(fixed), allowed_ids) & shapely.is_valid(fixed) & ~shapely.is_empty(fixed)
            idx = np.flatnonzero(invalid)
            geoms[idx[fixed_ok]] = fixed[fixed_ok]
            repaired[idx[fixed_ok]] = True
            still = np.zeros(n, dtype=bool)
            still[idx[~fixed_ok]] = True
            reject(still, Reason.GEOMETRY_INVALID, [f"{w}; repair failed" for w in why[~fixed_ok]])
        else:
            reject(invalid, Reason.GEOMETRY_INVALID, list(why))

    # CRS groups: one transformer per distinct source CRS in the chunk.
    source_names = np.full(n, "", dtype=object)
    wgs84 = np.full(n, None, dtype=object)
    for crs_text in map(str, np.unique(crs_names[ok].astype(str))):
        group = ok & (crs_names == crs_text)
        crs, name = resolve_crs(crs_text)
        if crs is None:
            reject(group, Reason.CRS_UNKNOWN, f"CRS {crs_text!r} is not known to PROJ: {name}")
            continue
        source_names[group] = name
        outside, message = _outside_area_of_use(geoms[group], crs, crs_text)
        outside_mask = np.zeros(n, dtype=bool)
        outside_mask[np.flatnonzero(group)[outside]] = True
        reject(outside_mask, Reason.OUTSIDE_CRS_AREA_OF_USE, message)
        group &= ~outside_mask
        wgs84[group] = transform(geoms[group], crs_text, WGS84)

    # Configured region, in lon/lat.
    lon_lat_bounds = np.full((n, 4), np.nan)
    lon_lat_bounds[ok] = shapely.bounds(wgs84[ok])
    minx, miny, maxx, maxy = rules.bounds
    outside = ok & ~(
        (lon_lat_bounds[:, 0] >= minx)
        & (lon_lat_bounds[:, 1] >= miny)
        & (lon_lat_bounds[:, 2] <= maxx)
        & (lon_lat_bounds[:, 3] <= maxy)
    )
    reject(outside, Reason.OUTSIDE_BOUNDS, f"geometry is not within the configured bounds {list(rules.bounds)}")

    # Counterclockwise exterior rings (RFC 7946 and GeoParquet's declared orientation).
    wgs84[ok] = shapely.orient_polygons(wgs84[ok], exterior_cw=False)
    target = wgs84.copy()
    target[ok] = transform(wgs84[ok], WGS84, rules.target_crs)
    if _transformer(WGS84, rules.target_crs) is not None:
        target[ok] = shapely.orient_polygons(target[ok], exterior_cw=False)

    area_ha = np.full(n, np.nan)
    perimeter_m = np.full(n, np.nan)
    area_ha[ok], perimeter_m[ok] = geodesic_area_perimeter(wgs84[ok])
    return SpatialResult(target, wgs84, source_names, area_ha / 10_000.0, perimeter_m, repaired, reasons)


def _non_finite(geoms: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out
    coords, which = shapely.get_coordinates(geoms[idx], return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    out[idx[np.unique(which[bad])]] = True
    return out


def _repair(geoms: np.ndarray) -> np.ndarray:
    """make_valid, keeping only the polygonal part (a bow-tie becomes two triangles)."""
    fixed = shapely.make_valid(geoms)
    needs = shapely.get_type_id(fixed) == 7
    if needs.any():
        parts, owner = shapely.get_parts(fixed[needs], return_index=True)
        polygonal = np.isin(shapely.get_type_id(parts), [3, 6])
        merged = np.array(
            [shapely.union_all(parts[polygonal & (owner == k)]) for k in range(int(needs.sum()))], dtype=object
        )
        fixed[needs] = merged
    return fixed


def _outside_area_of_use(geoms: np.ndarray, crs: CRS, label: str) -> tuple[np.ndarray, str]:
    """Coordinates that cannot belong to this CRS: UTM metres labelled degrees, swapped lat/lon, etc."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=bool), ""
    if crs.is_geographic:
        b = shapely.bounds(geoms)
        bad = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
        return bad, (
            f"coordinates outside longitude [-180, 180] / latitude [-90, 90] for geographic CRS {label} "
            "(projected metres labelled as degrees, or swapped axes?)"
        )
    aou = crs.area_of_use
    lonlat = transform(geoms, label, WGS84)
    b = shapely.bounds(lonlat)
    finite = np.isfinite(b).all(axis=1)
    if aou is None:
        return ~finite, f"coordinates cannot be transformed from {label}"
    m = AREA_OF_USE_MARGIN_DEG
    west, south, east, north = aou.west - m, aou.south - m, aou.east + m, aou.north + m
    inside_lat = (b[:, 1] >= south) & (b[:, 3] <= north)
    if west <= east:
        inside_lon = (b[:, 0] >= west) & (b[:, 2] <= east)
    else:  # area of use crosses the antimeridian
        inside_lon = ((b[:, 0] >= west) | (b[:, 2] <= east))
    bad = ~(finite & inside_lat & inside_lon)
    return bad, (
        f"coordinates fall outside the area of use of {label} "
        f"({aou.west:.1f}, {aou.south:.1f}, {aou.east:.1f}, {aou.north:.1f}) by more than {m} degrees"
    )


def geodesic_area_perimeter(lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ellipsoidal area (m²) and geodesic perimeter (m, holes included) of lon/lat polygons."""
    n = len(lonlat)
    area = np.zeros(n)
    perimeter = np.zeros(n)
    if n == 0:
        return area, perimeter
    bounds = shapely.bounds(lonlat)
    crosses = (bounds[:, 2] - bounds[:, 0]) > 180.0  # the antimeridian: planar tricks break there
    simple = ~crosses
    area[simple] = np.abs(shapely.area(transform(lonlat[simple], WGS84, _EQUAL_AREA)))
    # Rings of every polygon part (get_rings reads Polygons only), each tagged with its geometry.
    parts, part_owner = shapely.get_parts(lonlat[simple], return_index=True)
    ring_geoms, ring_part = shapely.get_rings(parts, return_index=True)
    ring_owner = part_owner[ring_part]
    if len(ring_geoms):
        coords, ring_idx = shapely.get_coordinates(ring_geoms, return_index=True)
        same = ring_idx[1:] == ring_idx[:-1]
        _, _, dist = GEOD.inv(coords[:-1, 0][same], coords[:-1, 1][same], coords[1:, 0][same], coords[1:, 1][same])
        seg_owner = ring_owner[ring_idx[:-1][same]]
        perimeter[np.flatnonzero(simple)] = np.bincount(seg_owner, weights=dist, minlength=int(simple.sum()))
    for i in np.flatnonzero(crosses):
        a, p = GEOD.geometry_area_perimeter(lonlat[i])
        area[i], perimeter[i] = abs(a), p
    # Non-polygonal types (if allowed) have no area; lines keep their geodesic length as perimeter.
    return area, perimeter
