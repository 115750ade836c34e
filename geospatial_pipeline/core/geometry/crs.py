"""Coordinate reference systems: naming, reprojecting flat coordinates, and whether coordinates can
belong to a CRS at all. One pyproj Transformer per CRS pair, cached; x/y (GeoJSON's lon/lat) order."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geospatial_pipeline.core.arrays import Bools, Float64s

# UTM and other projected CRSs are routinely used a little past their zone; beyond this it's a label error.
AREA_OF_USE_MARGIN_DEG = 2.0


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
def transformer(source: str, target: str) -> Transformer | None:
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


def transform_xy(coords: Float64s, source: str, target: str) -> Float64s:
    """Flat (V, 2) coordinates from one CRS to another (the same array when they share x/y)."""
    tr = transformer(source, target)
    if tr is None or len(coords) == 0:
        return coords
    x, y = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
    return np.column_stack([x, y])


_GEOGRAPHIC_MESSAGE = (
    "coordinates outside longitude [-180, 180] / latitude [-90, 90] for geographic CRS {label} "
    "(projected metres labelled as degrees, or swapped axes?)"
)


def outside_area_of_use(source: Float64s, lonlat: Float64s, crs: CRS, label: str) -> tuple[Bools, str]:
    """Geometries that cannot belong to `crs` (UTM metres labelled degrees, swapped lat/lon...), from
    their bounds (xmin, ymin, xmax, ymax) in the source CRS and in lon/lat; and the message."""
    if crs.is_geographic:
        b = source
        bad = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
        return bad, _GEOGRAPHIC_MESSAGE.format(label=label)
    aou = crs.area_of_use
    finite = np.asarray(np.isfinite(lonlat).all(axis=1))  # an array: numpy's stubs allow a scalar
    if aou is None:
        return ~finite, f"coordinates cannot be transformed from {label}"
    m = AREA_OF_USE_MARGIN_DEG
    west, south, east, north = aou.west - m, aou.south - m, aou.east + m, aou.north + m
    b = lonlat
    inside_lat = (b[:, 1] >= south) & (b[:, 3] <= north)
    # An area of use that crosses the antimeridian has west > east.
    inside_lon = (b[:, 0] >= west) & (b[:, 2] <= east) if west <= east else (b[:, 0] >= west) | (b[:, 2] <= east)
    bad = ~(finite & inside_lat & inside_lon)
    return bad, (
        f"coordinates fall outside the area of use of {label} "
        f"({aou.west:.1f}, {aou.south:.1f}, {aou.east:.1f}, {aou.north:.1f}) by more than {m} degrees"
    )
