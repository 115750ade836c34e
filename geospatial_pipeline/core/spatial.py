"""Geometry parsing, checks, reprojection and geodesic measures, vectorised with Shapely 2 and pyproj.

Every function takes whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geospatial_pipeline.core import coordinates_text, ring_kernels
from geospatial_pipeline.core.measures import polygon_measures
from geospatial_pipeline.core.records import Reason
from geospatial_pipeline.core.rules import WGS84, SpatialRules

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
    # Rows of the array lane have no shapely objects above: their outputs were built straight from
    # coordinates. `wkb` (target CRS, binary) of the rows `wkb_rows` (ascending), `bbox` per row, `lonlat`
    # their oriented lon/lat rings.
    wkb_rows: np.ndarray | None = None
    wkb: pa.Array | None = None
    bbox: np.ndarray | None = None
    lonlat: RaggedPolygons | None = None

    @classmethod
    def blank(cls, n: int, reasons: dict[int, list[tuple[Reason, str]]]) -> SpatialResult:
        """n rows with nothing computed yet, to be filled lane by lane."""
        return cls(
            np.full(n, None, dtype=object),
            np.full(n, None, dtype=object),
            np.full(n, "", dtype=object),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.zeros(n, dtype=bool),
            reasons,
        )

    def wkb_of(self, rows: np.ndarray) -> pa.Array:
        """WKB (2D, little-endian) of the target-CRS geometry of each row, as a binary array."""
        index = np.full(len(rows), -1, dtype=np.int64)
        parts: list[pa.Array] = []
        if self.wkb is not None and len(self.wkb_rows) and len(rows):
            pos = np.minimum(np.searchsorted(self.wkb_rows, rows), len(self.wkb_rows) - 1)
            found = self.wkb_rows[pos] == rows
            index[found] = pos[found]
            parts.append(self.wkb)
        rest = np.flatnonzero(index < 0)
        if len(rest):  # rows with shapely geometries (or none)
            index[rest] = len(parts[0]) + np.arange(len(rest)) if parts else np.arange(len(rest))
            kind = parts[0].type if parts else pa.binary()
            parts.append(pa.array(shapely.to_wkb(self.geometry[rows[rest]], output_dimension=2), kind))
        if not parts:
            return pa.array([], pa.binary())
        return (parts[0] if len(parts) == 1 else pa.concat_arrays(parts)).take(pa.array(index))

    def bounds_of(self, rows: np.ndarray) -> np.ndarray:
        """(xmin, ymin, xmax, ymax) of the target-CRS geometry of each row."""
        out = np.full((len(rows), 4), np.nan)
        built = np.zeros(len(rows), dtype=bool)
        if self.bbox is not None and len(rows):
            out[:] = self.bbox[rows]
            built = ~np.isnan(out).any(axis=1)
        if not built.all():
            out[~built] = shapely.bounds(self.geometry[rows[~built]])
        return out

    def geojson_of(self, rows: np.ndarray) -> list[str]:
        """RFC 7946 GeoJSON text of the lon/lat geometry of each row, as shapely.to_geojson writes it."""
        out: list = [None] * len(rows)
        if self.lonlat is not None and len(self.lonlat) and len(rows):
            where = np.full(int(max(self.lonlat.index.max(), rows.max())) + 1, -1, dtype=np.int64)
            where[self.lonlat.index] = np.arange(len(self.lonlat))
            pos = where[rows]
            have = np.flatnonzero(pos >= 0)
            for j, text in zip(have, _geojson(self.lonlat.take(pos[have])), strict=True):
                out[j] = text
        rest = [j for j, v in enumerate(out) if v is None]
        if rest:
            texts = shapely.to_geojson(self.geometry_wgs84[rows[rest]])
            for j, text in zip(rest, texts, strict=True):
                out[j] = text
        return out


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
    return (
        a.is_geographic
        and b.is_geographic
        and a.equals(wgs84, ignore_axis_order=True)
        and b.equals(wgs84, ignore_axis_order=True)
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
    reject = _rejecter(ok, reasons)

    missing = np.array([t is None for t in texts], dtype=bool)
    reject(ok & missing, Reason.GEOMETRY_MISSING, "Feature geometry is null or absent")
    geoms, parse_errors = parse_geometries([t if o else None for t, o in zip(texts, ok, strict=True)])
    bad_parse = np.zeros(n, dtype=bool)
    bad_parse[list(parse_errors)] = True
    reject(ok & bad_parse, Reason.GEOMETRY_UNPARSEABLE, [parse_errors[i] for i in np.flatnonzero(ok & bad_parse)])
    return _check_shapes(geoms, ok, crs_names, rules, reasons)


def _rejecter(ok: np.ndarray, reasons: dict[int, list[tuple[Reason, str]]]):
    """reject(mask, reason, message or one message per masked row): records reasons, clears `ok`."""

    def reject(mask: np.ndarray, reason: Reason, messages) -> None:
        for j, i in enumerate(np.flatnonzero(mask)):
            msg = messages if isinstance(messages, str) else messages[j]
            reasons.setdefault(int(i), []).append((reason, msg))
        ok[mask] = False

    return reject


def _check_shapes(
    geoms: np.ndarray,
    ok: np.ndarray,
    crs_names: np.ndarray,
    rules: SpatialRules,
    reasons: dict[int, list[tuple[Reason, str]]],
) -> SpatialResult:
    """Every check after parsing, on shapely geometries; rows not `ok` are left untouched."""
    n = len(geoms)
    reject = _rejecter(ok, reasons)
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
    reject(wrong_type, Reason.GEOMETRY_TYPE_NOT_ALLOWED, _type_messages(type_ids[wrong_type], rules))

    repaired = np.zeros(n, dtype=bool)
    invalid = np.zeros(n, dtype=bool)
    invalid[ok] = ~shapely.is_valid(geoms[ok])
    if invalid.any():
        why = shapely.is_valid_reason(geoms[invalid])
        if rules.repair_invalid:
            fixed = _repair(geoms[invalid])
            fixed_ok = (
                np.isin(shapely.get_type_id(fixed), allowed_ids) & shapely.is_valid(fixed) & ~shapely.is_empty(fixed)
            )
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
    for crs_text, crs, name, group in _crs_groups(crs_names, ok, reject):
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


def _crs_groups(crs_names: np.ndarray, ok: np.ndarray, reject):
    """(text, CRS, short name, row mask) per distinct source CRS; rows of an unknown CRS are rejected."""
    for crs_text in map(str, np.unique(crs_names[ok].astype(str))):
        group = ok & (crs_names == crs_text)
        crs, name = resolve_crs(crs_text)
        if crs is None:
            reject(group, Reason.CRS_UNKNOWN, f"CRS {crs_text!r} is not known to PROJ: {name}")
            continue
        yield crs_text, crs, name, group


def _type_messages(type_ids: np.ndarray, rules: SpatialRules) -> list[str]:
    return [f"{_TYPE_NAMES.get(int(t), t)} is not one of {list(rules.allowed_types)}" for t in type_ids]


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


_GEOGRAPHIC_MESSAGE = (
    "coordinates outside longitude [-180, 180] / latitude [-90, 90] for geographic CRS {label} "
    "(projected metres labelled as degrees, or swapped axes?)"
)


def _outside_area_of_use(geoms: np.ndarray, crs: CRS, label: str) -> tuple[np.ndarray, str]:
    """Coordinates that cannot belong to this CRS: UTM metres labelled degrees, swapped lat/lon, etc."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=bool), ""
    if crs.is_geographic:
        b = shapely.bounds(geoms)
        bad = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
        return bad, _GEOGRAPHIC_MESSAGE.format(label=label)
    return _area_of_use_verdict(shapely.bounds(transform(geoms, label, WGS84)), crs, label)


def _area_of_use_verdict(b: np.ndarray, crs: CRS, label: str) -> tuple[np.ndarray, str]:
    """Rows whose lon/lat bounds `b` leave a projected CRS's area of use by more than the margin."""
    aou = crs.area_of_use
    finite = np.isfinite(b).all(axis=1)
    if aou is None:
        return ~finite, f"coordinates cannot be transformed from {label}"
    m = AREA_OF_USE_MARGIN_DEG
    west, south, east, north = aou.west - m, aou.south - m, aou.east + m, aou.north + m
    inside_lat = (b[:, 1] >= south) & (b[:, 3] <= north)
    # An area of use that crosses the antimeridian has west > east.
    inside_lon = (b[:, 0] >= west) & (b[:, 2] <= east) if west <= east else (b[:, 0] >= west) | (b[:, 2] <= east)
    bad = ~(finite & inside_lat & inside_lon)
    return bad, (
        f"coordinates fall outside the area of use of {label} "
        f"({aou.west:.1f}, {aou.south:.1f}, {aou.east:.1f}, {aou.north:.1f}) by more than {m} degrees"
    )


def geodesic_area_perimeter(lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic area (m²) and perimeter (m, holes included) of lon/lat geometries (measures.py)."""
    n = len(lonlat)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    # Rings of every polygon part (get_rings reads Polygons only), each tagged with its geometry; the first
    # ring of a part is its exterior. Lines and points have no rings: no area, no perimeter.
    parts, part_owner = shapely.get_parts(lonlat, return_index=True)
    ring_geoms, ring_part = shapely.get_rings(parts, return_index=True)
    if not len(ring_geoms):
        return np.zeros(n), np.zeros(n)
    coords, ring_idx = shapely.get_coordinates(ring_geoms, return_index=True)
    ring_offsets = np.concatenate([[0], np.cumsum(np.bincount(ring_idx, minlength=len(ring_geoms)))])
    exterior = np.ones(len(ring_geoms), dtype=bool)
    exterior[1:] = ring_part[1:] != ring_part[:-1]
    return polygon_measures(coords, ring_offsets, exterior, part_owner[ring_part], n)


# --- The array lane: plain Polygons and MultiPolygons, decoded straight into flat coordinate arrays. ---


@dataclass
class RaggedPolygons:
    """Polygons and MultiPolygons of a chunk as flat coordinates with ring, part and geometry offsets.

    The layout of shapely's ragged arrays: a whole chunk is built, checked and measured in array calls,
    without writing each geometry back to GeoJSON text for GEOS to parse again.
    """

    index: np.ndarray  # record index in the chunk, per geometry
    multi: np.ndarray  # MultiPolygon (else Polygon), per geometry
    coords: np.ndarray  # (V, 2) float64
    ring_offsets: np.ndarray  # rings -> coords
    part_offsets: np.ndarray  # parts (polygons) -> rings
    geom_offsets: np.ndarray  # geometries -> parts

    def __len__(self) -> int:
        return len(self.index)

    @property
    def vertex_offsets(self) -> np.ndarray:
        """geometries -> coords."""
        return self.ring_offsets[self.part_offsets[self.geom_offsets]]

    def take(self, rows: np.ndarray) -> RaggedPolygons:
        """The geometries at positions `rows` (sorted), offsets renumbered."""
        parts = _ranges(self.geom_offsets[rows], self.geom_offsets[rows + 1])
        rings = _ranges(self.part_offsets[parts], self.part_offsets[parts + 1])
        verts = _ranges(self.ring_offsets[rings], self.ring_offsets[rings + 1])
        return RaggedPolygons(
            self.index[rows],
            self.multi[rows],
            self.coords[verts],
            _offsets(np.diff(self.ring_offsets)[rings]),
            _offsets(np.diff(self.part_offsets)[parts]),
            _offsets(np.diff(self.geom_offsets)[rows]),
        )

    def shapes(self, coords: np.ndarray | None = None) -> np.ndarray:
        """Shapely geometries (Polygon or MultiPolygon, as decoded) over `coords` or our own."""
        coords = self.coords if coords is None else coords
        polygons = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, coords, (self.ring_offsets, self.part_offsets)
        )
        out = np.empty(len(self), dtype=object)
        single = ~self.multi
        out[single] = polygons[self.geom_offsets[:-1][single]]
        if self.multi.any():
            rows = np.flatnonzero(self.multi)
            counts = np.diff(self.geom_offsets)[rows]
            members = _ranges(self.geom_offsets[rows], self.geom_offsets[rows + 1])
            out[rows] = shapely.multipolygons(polygons[members], indices=np.repeat(np.arange(len(rows)), counts))
        return out


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, e) for each pair, without a Python loop."""
    counts = ends - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - _offsets(counts)[:-1], counts)
    return np.arange(total, dtype=np.int64) + shift


class _NotPlain(Exception):
    """A candidate is not a plain 2D Polygon/MultiPolygon; the caller bisects to find it."""


def flatten_polygons(items: list[tuple[int, bool, Any]]) -> tuple[RaggedPolygons, list[int]]:
    """(record index, is MultiPolygon, decoded `coordinates`) → ragged arrays, and the record indices that
    are not plain: wrong nesting, non-numbers, not 2D, rings unclosed or under 4 positions, no rings.

    Those go back to the text path, where GEOS decides (and words) what is wrong, exactly as before. A
    bad record costs a bisection step, not a fallback of its whole chunk.
    """
    blocks: list[RaggedPolygons] = []
    bad: list[int] = []
    stack = [items]
    while stack:
        block = stack.pop()
        if not block:
            continue
        try:
            ragged, rejects = _flatten_block(block)
        except (_NotPlain, TypeError, ValueError, OverflowError):
            if len(block) == 1:
                bad.append(block[0][0])
                continue
            mid = len(block) // 2
            stack.extend([block[mid:], block[:mid]])  # popped first half first: input order kept
            continue
        blocks.append(ragged)
        bad.extend(rejects)
    return _concat_ragged(blocks), sorted(bad)


def _flatten_block(items: list[tuple[int, bool, Any]]) -> tuple[RaggedPolygons, list[int]]:
    parts_of = [coords if multi else (coords,) for _, multi, coords in items]
    for level in parts_of:
        if type(level) not in (list, tuple):
            raise _NotPlain
    n_parts = np.fromiter(map(len, parts_of), np.int64, len(parts_of))
    parts = list(chain.from_iterable(parts_of))
    n_rings = np.fromiter(map(len, parts), np.int64, len(parts))
    rings = list(chain.from_iterable(parts))
    n_points = np.fromiter(map(len, rings), np.int64, len(rings))
    pairs = list(chain.from_iterable(rings))
    pair_sizes = np.fromiter(map(len, pairs), np.int64, len(pairs))
    geom_offsets, part_offsets, ring_offsets = _offsets(n_parts), _offsets(n_rings), _offsets(n_points)

    # Structure, per geometry: at least one part, one ring per part, 4 positions per ring, 2 numbers each.
    bad_geom = n_parts == 0
    bad_geom |= _any_per(n_rings == 0, geom_offsets)
    part_bad_ring = _any_per(n_points < 4, part_offsets)
    bad_geom |= _any_per(part_bad_ring, geom_offsets)
    ring_bad_pair = _any_per(pair_sizes != 2, ring_offsets)
    bad_geom |= _any_per(_any_per(ring_bad_pair, part_offsets), geom_offsets)
    if bad_geom.any():
        return _retry_without(items, bad_geom)

    numbers = list(chain.from_iterable(pairs))
    sum(numbers)  # TypeError for anything but numbers (strings, lists, objects, null)
    coords = np.fromiter(numbers, np.float64, len(numbers))
    suspect = np.flatnonzero((coords == 0.0) | (coords == 1.0))  # where a JSON true/false would land
    if len(suspect):
        flags = np.zeros(len(numbers), dtype=bool)
        flags[suspect] = [type(numbers[k]) is bool for k in suspect.tolist()]
        bad_ring = _any_per(flags.reshape(-1, 2).any(axis=1), ring_offsets)
        bad_geom = _any_per(_any_per(bad_ring, part_offsets), geom_offsets)
        if bad_geom.any():
            return _retry_without(items, bad_geom)
    coords = coords.reshape(-1, 2)
    first, last = coords[ring_offsets[:-1]], coords[ring_offsets[1:] - 1]
    unclosed = (first != last).any(axis=1)
    if unclosed.any():
        return _retry_without(items, _any_per(_any_per(unclosed, part_offsets), geom_offsets))
    index = np.fromiter((i for i, _, _ in items), np.int64, len(items))
    multi = np.fromiter((m for _, m, _ in items), bool, len(items))
    return RaggedPolygons(index, multi, coords, ring_offsets, part_offsets, geom_offsets), []


# --- The array lane from text: the `coordinates` values of a chunk's records, read from their bytes at once. ---

_NUMBER_BYTES = b"0123456789+-.eE"
_SPACE_BYTES = b" \t\r\n"
# A value's structure: numbers go (deleted first), brackets, commas and the value separator "|" stay,
# whitespace becomes "w" and any other byte "x".
_STRUCTURE = bytes(c if c in b"[],|" else ord("w") if c in _SPACE_BYTES else ord("x") for c in range(256))
# A value's numbers, as items of one JSON array: brackets become spaces, the value separator a comma.
_TO_NUMBERS = bytes.maketrans(b"[]|", b"  ,")
_OPEN, _CLOSE, _COMMA, _BAR, _POINT, _OTHER = b"[],|px"
# Values whose numbers one orjson call reads.
_NUMBERS_BATCH = 64


def read_polygon_coordinates(values: list[bytes], multi: np.ndarray) -> RaggedPolygons:
    """The JSON text of Polygon (or, where `multi`, MultiPolygon) `coordinates` values → the arrays of those
    that are valid JSON and plain, as _flatten_block judges decoded ones (index: position in `values`)."""
    lengths = np.fromiter(map(len, values), np.int64, len(values))
    ends = np.cumsum(lengths)
    return read_polygon_coordinates_at(b"".join(values), ends - lengths, ends, multi)


def read_polygon_coordinates_at(text: bytes, starts: np.ndarray, ends: np.ndarray, multi: np.ndarray) -> RaggedPolygons:
    """read_polygon_coordinates for the values text[starts[k]:ends[k]] (index: k).

    Decoding coordinates into nested lists and walking those cost more than the rest of the parse: the
    values are read in one compiled pass (coordinates_text), and the few with numbers that pass cannot
    read exactly (over 15 digits, exponents) by _read_with_orjson.
    """
    if len(starts) == 0:
        return _concat_ragged([])
    status, coords, ring_offsets, part_offsets, geom_offsets = coordinates_text.read_values(text, starts, ends, multi)
    taken = np.flatnonzero(status == coordinates_text.TAKEN)
    ragged = RaggedPolygons(taken, multi[taken], coords, ring_offsets, part_offsets, geom_offsets)
    asked = np.flatnonzero(status == coordinates_text.ASK_ORJSON)
    if len(asked):
        other = _read_with_orjson([text[starts[k] : ends[k]] for k in asked.tolist()], multi[asked])
        other.index = asked[other.index]
        ragged = concat_by_index([ragged, other])
    return ragged


def _read_with_orjson(values: list[bytes], multi: np.ndarray) -> RaggedPolygons:
    """read_polygon_coordinates for any values, numbers read by orjson. The values are checked as text,
    together: nothing but numbers, whitespace, brackets and commas; brackets and
    commas of plain polygons, each position "[,]" (_value_structure); no position with an empty side ("[,"
    or ",]"). The numbers, with brackets made spaces, are read by one orjson call, the parser of the records,
    so each double is the one the decoded lists hold, and so a malformed number, or a number outside a
    position (then two numbers with no comma between), fails. A value that fails is left out and the others
    read all the same, so that a bad record costs its neighbours nothing.
    """
    m = len(values)
    if m == 0:
        return _concat_ragged([])
    joined = b"|".join(values)
    shape = joined.translate(_STRUCTURE, _NUMBER_BYTES)
    compact = joined
    if b"w" in shape:
        shape = shape.translate(None, b"w")
        compact = joined.translate(None, _SPACE_BYTES)
    shape = shape.replace(b"[,]", b"p")
    r = np.frombuffer(shape, np.uint8)
    bars = np.flatnonzero(r == _BAR)
    ends = _with_end(bars, len(r))
    starts = np.concatenate([[0], bars + 1])
    if not (
        len(bars) == m - 1 and (ends > starts).all() and (r[starts] == _OPEN).all() and (r[ends - 1] == _CLOSE).all()
    ):  # a "|" in a value, or a value not in brackets: never one from reading._coordinates_span
        return _read_subset(values, multi, [_passes_text_checks(v) for v in values])

    bad = np.zeros(m, dtype=bool)
    if b"x" in shape:  # strings, literals, objects
        bad[np.searchsorted(bars, np.flatnonzero(r == _OTHER))] = True
    for pair in (b"pp", b",,"):
        bad[np.searchsorted(bars, _pairs_at(shape, pair))] = True
    compact_bars = None
    for pair in (b"[,", b",]"):
        at = _pairs_at(compact, pair)
        if len(at):
            if compact_bars is None:
                compact_bars = np.flatnonzero(np.frombuffer(compact, np.uint8) == _BAR)
            bad[np.searchsorted(compact_bars, at)] = True
    not_plain, first, parts, rings, points = _value_structure(r, starts, multi)
    bad |= not_plain
    if bad.all():
        return _concat_ragged([])
    numbers, failed = _read_numbers(values, np.flatnonzero(~bad).tolist())
    if failed:
        bad[failed] = True
        if bad.all():
            return _concat_ragged([])
    keep = ~bad
    if bad.any():
        first = first[keep]
        parts = parts[0][keep[parts[1]]]
        rings, points = rings[0][keep[rings[1]]], points[keep[rings[1]]]
    else:
        parts, rings = parts[0], rings[0]
    ring_offsets = _offsets(points)
    if len(numbers) != 2 * ring_offsets[-1]:  # cannot happen after the checks above; never guess
        return _concat_ragged([])
    coords = numbers.reshape(-1, 2)
    geom_offsets = _with_end(np.searchsorted(parts, first), len(parts))
    part_offsets = _with_end(np.searchsorted(rings, parts), len(rings))
    rows = np.flatnonzero(keep)
    ragged = RaggedPolygons(rows, multi[rows], coords, ring_offsets, part_offsets, geom_offsets)
    unclosed = (coords[ring_offsets[:-1]] != coords[ring_offsets[1:] - 1]).any(axis=1)
    if unclosed.any():
        ragged = ragged.take(np.flatnonzero(~_any_per(_any_per(unclosed, part_offsets), geom_offsets)))
    return ragged


def _read_subset(values: list[bytes], multi: np.ndarray, keep: list[bool]) -> RaggedPolygons:
    """_read_with_orjson on the values marked in `keep`, positions still those of `values`."""
    if all(keep):  # the values pass one by one but not together: never expected; take none
        return _concat_ragged([])
    rows = np.flatnonzero(np.array(keep, dtype=bool))
    ragged = _read_with_orjson([values[k] for k in rows.tolist()], multi[rows])
    ragged.index = rows[ragged.index]
    return ragged


def _passes_text_checks(value: bytes) -> bool:
    """The checks of _read_with_orjson before _value_structure, for one value."""
    shape = value.translate(_STRUCTURE, _NUMBER_BYTES)
    if b"x" in shape or b"|" in shape:
        return False
    compact = value.translate(None, _SPACE_BYTES)
    if b"[," in compact or b",]" in compact:
        return False
    shape = shape.translate(None, b"w").replace(b"[,]", b"p")
    return shape[:1] == b"[" and shape[-1:] == b"]" and b"pp" not in shape and b",," not in shape


def _read_numbers(values: list[bytes], rows: list[int]) -> tuple[np.ndarray, list[int]]:
    """The numbers of values[rows] as orjson reads them, in order, and the rows it cannot read.

    A few values at a time: the floats orjson makes are still in the CPU cache when copied out, and a value
    orjson rejects costs a second look at a few others only. It is found where orjson stops (its position is
    the one in the text, all ASCII here); the values before it are read, the rest tried again.
    """
    text = b"|".join([values[k] for k in rows]).translate(_TO_NUMBERS)
    # Where each value starts in `text`, and where it would start after the last one.
    starts = _offsets(np.fromiter((len(values[k]) + 1 for k in rows), np.int64, len(rows))).tolist()
    arrays: list[np.ndarray] = []
    failed: list[int] = []
    first = 0
    while first < len(rows):
        last = min(first + _NUMBERS_BATCH, len(rows))
        try:
            numbers = orjson.loads(b"[" + text[starts[first] : starts[last] - 1] + b"]")
            first = last
        except orjson.JSONDecodeError as exc:
            stop = int(np.searchsorted(starts, starts[first] + exc.pos - 1, side="right")) - 1
            stop = min(max(stop, first), last - 1)
            numbers = []
            if stop > first:
                try:
                    numbers = orjson.loads(b"[" + text[starts[first] : starts[stop] - 1] + b"]")
                except orjson.JSONDecodeError:  # not where it stopped: never so; read none
                    return np.zeros(0), rows
            failed.append(rows[stop])
            first = stop + 1
        arrays.append(np.fromiter(numbers, np.float64, len(numbers)))
    return np.concatenate(arrays) if arrays else np.zeros(0), failed


def _pairs_at(text: bytes, pair: bytes) -> np.ndarray:
    """Where in `text` the two bytes of `pair` follow each other (numpy: bytes.find is slow at this)."""
    code = pair[0] | pair[1] << 8
    even = np.frombuffer(text, "<u2", count=len(text) // 2) == code
    odd = np.frombuffer(text, "<u2", count=(len(text) - 1) // 2, offset=1) == code
    if not (even.any() or odd.any()):
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.flatnonzero(even) * 2, np.flatnonzero(odd) * 2 + 1])


def _with_end(starts: np.ndarray, end: int) -> np.ndarray:
    out = np.empty(len(starts) + 1, dtype=np.int64)
    out[:-1] = starts
    out[-1] = end
    return out


def _value_structure(r: np.ndarray, starts: np.ndarray, multi: np.ndarray):
    """Values' structure, from "|"-separated strings of "[", "]", "," and "p" (a position "[,]") that each
    start with "[" and end with "]". Returns per value whether it is not plain; the index (among brackets)
    of its first bracket; the brackets opening parts and those opening rings, each with the value it belongs
    to; and the positions of each ring. Values with other bytes, "pp" or ",," are the caller's to reject.

    Plain: bracket depths between the value's own (1 for a MultiPolygon, 2 for a Polygon) and 3, back below
    its own exactly at its last bracket; an array above ring depth holds arrays only (its "[" is followed by
    "["; a "]" by "]", or by "," or "|" and then "["); a ring holds p,p,... and at least four positions.
    """
    m = len(multi)
    brackets = np.flatnonzero((r == _OPEN) | (r == _CLOSE))
    opens = r[brackets] == _OPEN
    depth = np.cumsum(np.where(opens, 1, -1))
    first = np.searchsorted(brackets, starts)
    bracket_offsets = _with_end(first, len(brackets))
    owner = np.repeat(np.arange(m), np.diff(bracket_offsets))
    top = np.where(multi, 1, 2)
    rel = depth - (depth[first] - top)[owner]  # depth after each bracket, within its own value
    gap = np.diff(brackets, append=len(r)) - 1  # bytes up to the next bracket
    next_opens = np.append(opens[1:], False)
    ring = opens & (rel == 3)
    flags = (rel < top[owner]) | (rel > 3)
    flags |= opens & ~ring & ((gap != 0) | ~next_opens)
    flags |= ~opens & ((gap > 1) | ((gap == 0) & next_opens) | ((gap == 1) & ~next_opens))
    after = np.minimum(brackets + 1, len(r) - 1)
    flags |= ~opens & (gap == 1) & (r[after] == _POINT)
    ring_at = np.flatnonzero(ring)
    ring_gap = gap[ring_at]
    inside = brackets[ring_at]
    flags[ring_at] |= (
        (ring_gap < 7)
        | (r[np.minimum(inside + 1, len(r) - 1)] != _POINT)
        | (r[np.minimum(inside + ring_gap, len(r) - 1)] != _POINT)
    )
    last = bracket_offsets[1:] - 1
    flags[last] = rel[last] != top - 1
    bad = _any_per(flags, bracket_offsets)
    part_at = np.flatnonzero(opens & (rel == 2))
    return bad, first, (part_at, owner[part_at]), (ring_at, owner[ring_at]), (ring_gap + 1) // 2


def _any_per(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per group (given by offsets over `flags`): is any flag set? Empty groups give False."""
    running = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=running[1:])
    return running[offsets[1:]] > running[offsets[:-1]]


def _retry_without(items: list[tuple[int, bool, Any]], bad: np.ndarray) -> tuple[RaggedPolygons, list[int]]:
    good = [item for item, b in zip(items, bad, strict=True) if not b]
    ragged, more = _flatten_block(good) if good else (_concat_ragged([]), [])
    return ragged, [item[0] for item, b in zip(items, bad, strict=True) if b] + more


def concat_by_index(blocks: list[RaggedPolygons]) -> RaggedPolygons:
    """Sets of one chunk's geometries as one, in record order (as if flattened together)."""
    both = _concat_ragged([b for b in blocks if len(b)] or blocks[:1])
    if len(both) < 2 or (np.diff(both.index) > 0).all():
        return both
    return both.take(np.argsort(both.index, kind="stable"))


def _concat_ragged(blocks: list[RaggedPolygons]) -> RaggedPolygons:
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        zero = np.zeros(1, dtype=np.int64)
        return RaggedPolygons(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, 2)), zero, zero, zero)

    def joined(name: str, base: list[int]) -> np.ndarray:
        arrays = [getattr(b, name) for b in blocks]
        return np.concatenate([arrays[0]] + [a[1:] + base[k] for k, a in enumerate(arrays[1:], start=1)])

    verts = np.cumsum([0] + [len(b.coords) for b in blocks]).tolist()
    rings = np.cumsum([0] + [len(b.ring_offsets) - 1 for b in blocks]).tolist()
    parts = np.cumsum([0] + [len(b.part_offsets) - 1 for b in blocks]).tolist()
    return RaggedPolygons(
        np.concatenate([b.index for b in blocks]),
        np.concatenate([b.multi for b in blocks]),
        np.concatenate([b.coords for b in blocks]),
        joined("ring_offsets", verts),
        joined("part_offsets", rings),
        joined("geom_offsets", parts),
    )


def check_parsed_geometries(
    texts: list[bytes | None],
    polygons: RaggedPolygons | None,
    crs_names: np.ndarray,
    skip: np.ndarray,
    rules: SpatialRules,
) -> SpatialResult:
    """check_geometries for a parsed chunk: records in `polygons` take the array lane, every other one
    (text in `texts`, or no geometry) takes check_geometries itself. Same reasons, same results."""
    n = len(texts)
    if polygons is None or len(polygons) == 0:
        return check_geometries(texts, crs_names, skip, rules)
    result = SpatialResult.blank(n, {})
    in_array = np.zeros(n, dtype=bool)
    in_array[polygons.index] = True
    others = np.flatnonzero(~in_array)
    if len(others):
        _scatter(result, check_geometries([texts[i] for i in others], crs_names[others], skip[others], rules), others)
    rows = np.flatnonzero(~skip[polygons.index])
    if len(rows):
        ragged = polygons if len(rows) == len(polygons) else polygons.take(rows)
        _scatter(result, _check_ragged(ragged, crs_names[ragged.index], rules), ragged.index)
    return result


def _scatter(into: SpatialResult, part: SpatialResult, rows: np.ndarray) -> None:
    for name in ("geometry", "geometry_wgs84", "source_crs", "area_ha", "perimeter_m", "repaired"):
        getattr(into, name)[rows] = getattr(part, name)
    for j, problems in part.reasons.items():
        into.reasons[int(rows[j])] = problems
    n = len(into.area_ha)
    if part.wkb is not None:
        wkb_rows, wkb = rows[part.wkb_rows], part.wkb
        if into.wkb is not None:
            wkb_rows, wkb = np.concatenate([into.wkb_rows, wkb_rows]), pa.concat_arrays([into.wkb, wkb])
        order = np.argsort(wkb_rows, kind="stable")
        into.wkb_rows, into.wkb = wkb_rows[order], wkb.take(pa.array(order))
    if part.bbox is not None:
        if into.bbox is None:
            into.bbox = np.full((n, 4), np.nan)
        into.bbox[rows] = part.bbox
    if part.lonlat is not None and len(part.lonlat):
        moved = RaggedPolygons(
            rows[part.lonlat.index],
            part.lonlat.multi,
            part.lonlat.coords,
            part.lonlat.ring_offsets,
            part.lonlat.part_offsets,
            part.lonlat.geom_offsets,
        )
        into.lonlat = moved if into.lonlat is None else _concat_ragged([into.lonlat, moved])


def _group_bounds(coords: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(minx, miny, maxx, maxy) per group of coordinates; NaN is skipped as GEOS's envelope does."""
    starts = offsets[:-1]
    return np.column_stack(
        [
            np.fmin.reduceat(coords[:, 0], starts),
            np.fmin.reduceat(coords[:, 1], starts),
            np.fmax.reduceat(coords[:, 0], starts),
            np.fmax.reduceat(coords[:, 1], starts),
        ]
    )


def _transform_xy(coords: np.ndarray, source: str, target: str) -> np.ndarray:
    """`transform` for flat coordinates: the same points, so the same numbers."""
    tr = _transformer(source, target)
    if tr is None or len(coords) == 0:
        return coords
    x, y = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
    return np.column_stack([x, y])


def _check_ragged(rg: RaggedPolygons, crs_names: np.ndarray, rules: SpatialRules) -> SpatialResult:
    """The checks of `_check_shapes`, in its order and words, on plain polygons held as arrays."""
    n = len(rg)
    reasons: dict[int, list[tuple[Reason, str]]] = {}
    ok = np.ones(n, dtype=bool)
    reject = _rejecter(ok, reasons)
    voff = rg.vertex_offsets
    nverts = np.diff(voff)
    too_many = nverts > rules.max_vertices
    reject(too_many, Reason.TOO_MANY_VERTICES, f"more than max_vertices={rules.max_vertices} vertices")
    non_finite = _any_per(~np.isfinite(rg.coords).all(axis=1), voff)
    reject(ok & non_finite, Reason.GEOMETRY_NON_FINITE, "coordinates contain NaN or Infinity")
    # Never empty and never 3D: flatten_polygons let only 2D positions and non-empty rings through.
    type_ids = np.where(rg.multi, _TYPE_IDS["MultiPolygon"], _TYPE_IDS["Polygon"])
    allowed_ids = [_TYPE_IDS[t] for t in rules.allowed_types]
    wrong_type = ok & ~np.isin(type_ids, allowed_ids)
    reject(wrong_type, Reason.GEOMETRY_TYPE_NOT_ALLOWED, _type_messages(type_ids[wrong_type], rules))

    result = SpatialResult.blank(n, reasons)
    invalid = np.zeros(n, dtype=bool)
    asked = np.flatnonzero(ok & ~star_shaped(rg))  # GEOS judges the rest; most field boundaries need not ask
    source = rg.take(asked).shapes()
    invalid[asked] = ~shapely.is_valid(source)
    if invalid.any():
        rows = np.flatnonzero(invalid)
        shapes = source[np.searchsorted(asked, rows)]
        ok[rows] = False
        if rules.repair_invalid:  # repaired shapes are no longer plain arrays: they finish in the shapely lane
            _scatter(
                result,
                _check_shapes(shapes, np.ones(len(rows), dtype=bool), crs_names[rows], rules, {}),
                rows,
            )
        else:
            for i, why in zip(rows, shapely.is_valid_reason(shapes), strict=True):
                reasons.setdefault(int(i), []).append((Reason.GEOMETRY_INVALID, why))

    # CRS groups, as in _check_shapes; coordinates of each group are transformed once. Lon/lat groups (most
    # batches are all lon/lat) stay where they are: their bounds are those of the source coordinates.
    lonlat = rg.coords
    bounds = _group_bounds(rg.coords, voff)  # per geometry: source bounds, then lon/lat bounds
    vertex_row = None
    for crs_text, crs, name, group in _crs_groups(crs_names, ok, reject):
        result.source_crs[group] = name
        source_bounds = bounds[group]
        if _transformer(crs_text, WGS84) is None:
            moved_bounds = source_bounds
        else:
            if vertex_row is None:
                vertex_row = np.repeat(np.arange(n), nverts)
                lonlat = rg.coords.copy()
            in_group = group[vertex_row]
            moved = _transform_xy(rg.coords[in_group], crs_text, WGS84)
            lonlat[in_group] = moved
            moved_bounds = bounds[group] = _group_bounds(moved, _offsets(nverts[group]))
        outside, message = _outside_area_of_use_bounds(source_bounds, moved_bounds, crs, crs_text)
        outside_mask = np.zeros(n, dtype=bool)
        outside_mask[np.flatnonzero(group)[outside]] = True
        reject(outside_mask, Reason.OUTSIDE_CRS_AREA_OF_USE, message)

    accepted = np.flatnonzero(ok)
    if len(accepted) == 0:
        return result
    sub = rg.take(accepted)
    sub_lonlat = lonlat[_ranges(voff[accepted], voff[accepted + 1])]
    b = bounds[accepted]
    minx, miny, maxx, maxy = rules.bounds
    outside = ~((b[:, 0] >= minx) & (b[:, 1] >= miny) & (b[:, 2] <= maxx) & (b[:, 3] <= maxy))
    mask = np.zeros(n, dtype=bool)
    mask[accepted[outside]] = True
    reject(mask, Reason.OUTSIDE_BOUNDS, f"geometry is not within the configured bounds {list(rules.bounds)}")
    if outside.any():
        keep = np.flatnonzero(~outside)
        accepted, b = accepted[keep], b[keep]
        sub_lonlat = sub_lonlat[_ranges(sub.vertex_offsets[keep], sub.vertex_offsets[keep + 1])]
        sub = sub.take(keep)
        if len(accepted) == 0:
            return result

    # Counterclockwise exterior rings, clockwise holes (RFC 7946, GeoParquet's declared orientation), then the
    # target CRS with its own orientation pass, as in _check_shapes; outputs are written from the arrays.
    exterior = np.zeros(len(sub.ring_offsets) - 1, dtype=bool)
    exterior[sub.part_offsets[:-1]] = True
    oriented = sub_lonlat[_orientation_order(sub, sub_lonlat, exterior)]
    target = oriented
    if _transformer(WGS84, rules.target_crs) is not None:
        target = _transform_xy(oriented, WGS84, rules.target_crs)
        target = target[_orientation_order(sub, target, exterior)]
    result.wkb_rows, result.wkb = accepted, _wkb(sub, target)
    result.bbox = np.full((n, 4), np.nan)
    result.bbox[accepted] = _group_bounds(target, sub.vertex_offsets)
    result.lonlat = RaggedPolygons(accepted, sub.multi, oriented, sub.ring_offsets, sub.part_offsets, sub.geom_offsets)

    ring_owner = np.repeat(np.repeat(np.arange(len(sub)), np.diff(sub.geom_offsets)), np.diff(sub.part_offsets))
    area, perimeter = polygon_measures(oriented, sub.ring_offsets, exterior, ring_owner, len(sub))
    result.area_ha[accepted] = area / 10_000.0
    result.perimeter_m[accepted] = perimeter
    return result


# Least turn, and least short of a half turn, of an edge seen from the centre: far above the error of the
# angles (about 1e-15 rad: the differences to the centre are correctly rounded, atan2 is within an ulp).
_STAR_MARGIN = 1e-9


def star_shaped(rg: RaggedPolygons) -> np.ndarray:
    """Per geometry: a single ring going round the mean of its vertices in one direction, which makes it
    a simple polygon and so valid as GEOS judges it. False means "ask GEOS", not "invalid".

    Seen from that centre every edge turns the same way by more than nothing and less than a half turn,
    and the turns add up to exactly one full turn: the edges then lie in sectors that meet only at shared
    vertices, so no two edges cross or touch elsewhere. Convex and nearly convex boundaries (most fields)
    pass. Holes, several parts, unclosed rings and a vertex on the centre are left to GEOS.
    """
    out = np.zeros(len(rg), dtype=bool)
    rings = np.diff(rg.part_offsets[rg.geom_offsets])
    single = np.flatnonzero(rings == 1)
    ring = rg.part_offsets[rg.geom_offsets[single]]
    starts, ends = rg.ring_offsets[ring], rg.ring_offsets[ring + 1]
    usable = ends - starts >= 4
    single, starts, ends = single[usable], starts[usable], ends[usable]
    if not len(single):
        return out
    flags = np.empty(len(single), dtype=bool)
    ring_kernels.star_rings(np.ascontiguousarray(rg.coords), starts, ends, _STAR_MARGIN, flags)
    out[single] = flags
    return out


def _all_per(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per group (given by offsets over `flags`): is every flag set?"""
    return ~_any_per(~flags, offsets)


def _orientation_order(rg: RaggedPolygons, coords: np.ndarray, exterior: np.ndarray) -> np.ndarray:
    """Vertex order that makes exteriors counterclockwise and holes clockwise, reversing rings in place
    (the first vertex stays first), as GEOS's orient_polygons does."""
    starts, ends = rg.ring_offsets[:-1], rg.ring_offsets[1:]
    counts = ends - starts
    ccw = np.empty(len(starts), dtype=bool)
    doubtful = np.empty(len(starts), dtype=bool)
    ring_kernels.ring_orientation(np.ascontiguousarray(coords), rg.ring_offsets, ccw, doubtful)
    unsure = np.flatnonzero(doubtful)
    if len(unsure):  # slivers: let GEOS's robust orientation test decide
        verts = _ranges(starts[unsure], ends[unsure])
        rings = shapely.linearrings(coords[verts], indices=np.repeat(np.arange(len(unsure)), counts[unsure]))
        ccw[unsure] = shapely.is_ccw(rings)
    flip = np.flatnonzero(ccw != exterior)
    order = np.arange(len(coords), dtype=np.int64)
    if len(flip):
        verts = _ranges(starts[flip], ends[flip])
        first = np.repeat(starts[flip], counts[flip])
        last = np.repeat(ends[flip] - 1, counts[flip])
        order[verts] = first + last - verts
    return order


def _wkb(rg: RaggedPolygons, coords: np.ndarray) -> pa.Array:
    """ISO/extended WKB (2D, little-endian) of each geometry, byte for byte what shapely.to_wkb writes,
    laid out for the whole chunk at once (headers by index, coordinates by one masked copy) as the data
    buffer of a binary array: no bytes object per geometry."""
    n_points = np.diff(rg.ring_offsets)
    n_rings = np.diff(rg.part_offsets)
    n_parts = np.diff(rg.geom_offsets)
    ring_part = np.repeat(np.arange(len(n_rings)), n_rings)
    part_geom = np.repeat(np.arange(len(n_parts)), n_parts)
    multi = rg.multi.astype(np.int64)
    ring_bytes = 4 + 16 * n_points
    part_bytes = 9 + np.bincount(ring_part, weights=ring_bytes, minlength=len(n_rings)).astype(np.int64)
    geom_bytes = 9 * multi + np.bincount(part_geom, weights=part_bytes, minlength=len(n_parts)).astype(np.int64)
    geom_start = _offsets(geom_bytes)
    part_cum, ring_cum = _offsets(part_bytes), _offsets(ring_bytes)
    # Byte positions: a geometry's parts follow its own header (MultiPolygon only), a part's rings its header.
    within_geom = part_cum[:-1] - part_cum[rg.geom_offsets[:-1]][part_geom]
    part_start = geom_start[part_geom] + 9 * multi[part_geom] + within_geom
    ring_start = part_start[ring_part] + 9 + (ring_cum[:-1] - ring_cum[rg.part_offsets[:-1]][ring_part])

    buf = np.empty(int(geom_start[-1]), dtype=np.uint8)
    is_coord = np.ones(len(buf), dtype=bool)

    def header(pos: np.ndarray, type_id: int, count: np.ndarray) -> None:
        buf[pos] = 1  # little-endian
        fields = np.column_stack([np.full(len(pos), type_id, dtype="<u4"), count.astype("<u4")])
        idx = pos[:, None] + np.arange(1, 9)
        buf[idx] = fields.view(np.uint8).reshape(-1, 8)
        is_coord[pos] = False
        is_coord[idx] = False

    multis = np.flatnonzero(rg.multi)
    header(geom_start[:-1][multis], 6, n_parts[multis])
    header(part_start, 3, n_rings)
    idx = ring_start[:, None] + np.arange(4)
    buf[idx] = n_points.astype("<u4").view(np.uint8).reshape(-1, 4)
    is_coord[idx] = False
    buf[is_coord] = np.ascontiguousarray(coords, dtype="<f8").view(np.uint8).ravel()
    if len(buf) < 1 << 31:  # 32-bit offsets, as the binary type has
        offsets, kind = pa.py_buffer(geom_start.astype(np.int32)), pa.binary()
    else:
        offsets, kind = pa.py_buffer(geom_start), pa.large_binary()
    return pa.Array.from_buffers(kind, len(geom_bytes), [None, offsets, pa.py_buffer(buf)])


# GEOS writes numbers below 1e-4 or from 1e15 on in exponent form where orjson does not: those go to GEOS.
_PLAIN_NUMBERS = (1e-4, 1e15)


def _geojson(rg: RaggedPolygons) -> list[str]:
    """shapely.to_geojson's text for plain polygons, written by orjson from the coordinate arrays."""
    size = np.abs(rg.coords)
    plain = (size == 0) | ((size >= _PLAIN_NUMBERS[0]) & (size < _PLAIN_NUMBERS[1]))
    needs_geos = _any_per(~plain.all(axis=1), rg.vertex_offsets)
    out: list[str] = []
    coords, rings, parts, geoms = rg.coords, rg.ring_offsets, rg.part_offsets, rg.geom_offsets
    for g in range(len(rg)):
        if needs_geos[g]:
            shape = rg.take(np.array([g])).shapes()[0]
            out.append(shapely.to_geojson(shape))
            continue
        polygons = [
            [coords[rings[r] : rings[r + 1]] for r in range(parts[q], parts[q + 1])]
            for q in range(geoms[g], geoms[g + 1])
        ]
        if rg.multi[g]:
            body = {"type": "MultiPolygon", "coordinates": polygons}
        else:
            body = {"type": "Polygon", "coordinates": polygons[0]}
        out.append(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    return out


def _outside_area_of_use_bounds(source: np.ndarray, lonlat: np.ndarray, crs: CRS, label: str) -> tuple[np.ndarray, str]:
    """`_outside_area_of_use` on per-geometry bounds (of the source and of the transformed lon/lat)."""
    if len(source) == 0:
        return np.zeros(0, dtype=bool), ""
    if crs.is_geographic:
        b = source
        bad = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
        return bad, _GEOGRAPHIC_MESSAGE.format(label=label)
    return _area_of_use_verdict(lonlat, crs, label)
