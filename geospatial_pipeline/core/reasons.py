"""Machine-readable reason codes for quarantined records, and how rules record them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from geospatial_pipeline.core.arrays import Bools, Int64s


class Reason(StrEnum):
    """Values are part of the data contract (the quarantine's `reason_codes`)."""

    MALFORMED_JSON = "malformed_json"
    NOT_A_FEATURE = "not_a_feature"
    RECORD_TOO_LARGE = "record_too_large"
    FILE_UNREADABLE = "file_unreadable"
    UNSUPPORTED_FILE = "unsupported_file"
    INVALID_FIELD_ID = "invalid_field_id"
    INVALID_ARRIVAL_TIME = "invalid_arrival_time"
    INVALID_PROCESSING_DATE = "invalid_processing_date"
    INVALID_CRS_PROPERTY = "invalid_crs_property"
    DATA_NOT_OBJECT = "data_not_object"
    ARRIVAL_BEFORE_INTENDED_DATE = "arrival_before_intended_date"
    ARRIVAL_IN_FUTURE = "arrival_in_future"
    FUTURE_PARTITION = "future_partition"
    BEFORE_PARTITION_START = "before_partition_start"
    GEOMETRY_MISSING = "geometry_missing"
    GEOMETRY_UNPARSEABLE = "geometry_unparseable"
    GEOMETRY_EMPTY = "geometry_empty"
    GEOMETRY_NON_FINITE = "geometry_non_finite"
    GEOMETRY_NOT_2D = "geometry_not_2d"
    TOO_MANY_VERTICES = "too_many_vertices"
    GEOMETRY_TYPE_NOT_ALLOWED = "geometry_type_not_allowed"
    GEOMETRY_INVALID = "geometry_invalid"
    CRS_UNKNOWN = "crs_unknown"
    OUTSIDE_CRS_AREA_OF_USE = "outside_crs_area_of_use"
    OUTSIDE_BOUNDS = "outside_bounds"


Problems = dict[int, list[tuple[Reason, str]]]


class Verdicts:
    """Which rows are still accepted, and every rejected row's reasons (a row keeps its first one:
    once rejected it is not judged again). Rows are positions 0..n-1; `rows` maps them to records."""

    def __init__(self, n: int, rows: Int64s | None = None):
        self.ok = np.ones(n, dtype=bool)
        self.rows = np.arange(n) if rows is None else rows
        self.problems: Problems = {}

    def reject(self, mask: Bools, reason: Reason, messages: str | Sequence[str]) -> None:
        """Reject the rows in `mask` that are still accepted (a message for all, or one per row of `mask`)."""
        for j, i in enumerate(np.flatnonzero(mask).tolist()):
            if self.ok[i]:
                message = messages if isinstance(messages, str) else messages[j]
                self.problems.setdefault(int(self.rows[i]), []).append((reason, message))
        self.ok &= ~mask
