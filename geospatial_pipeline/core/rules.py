"""What the rules depend on besides the data: plain values built from settings by the Dagster shell.

Kept apart from the modules that apply them, so loading settings imports no geometry or compiled code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class SpatialRules:
    target_crs: str = WGS84
    bounds: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    allowed_types: tuple[str, ...] = ("Polygon", "MultiPolygon")
    repair_invalid: bool = False
    max_vertices: int = 100_000


@dataclass(frozen=True)
class Rules:
    partition_start: dt.date = dt.date(2025, 1, 1)
    lateness_window: dt.timedelta = dt.timedelta(days=1)
    max_clock_skew: dt.timedelta = dt.timedelta(minutes=10)
    spatial: SpatialRules = field(default_factory=SpatialRules)
