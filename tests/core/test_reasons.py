"""core/reasons.py: the reason codes are the quarantine's contract, and a rejected row keeps its first
reason (later checks do not judge it again)."""

from __future__ import annotations

import numpy as np

from geospatial_pipeline.core.reasons import Reason, Verdicts


def test_the_codes_are_lower_snake_case_and_unique():
    values = [r.value for r in Reason]
    assert len(values) == len(set(values))
    assert all(v == v.lower() and " " not in v and v.replace("_", "").isalnum() for v in values)
    assert Reason.GEOMETRY_INVALID == "geometry_invalid"  # a StrEnum: written as its code


def test_a_rejected_row_keeps_its_first_reason_under_its_record_number():
    verdicts = Verdicts(4, rows=np.array([10, 11, 12, 13]))
    verdicts.reject(np.array([True, False, True, False]), Reason.GEOMETRY_EMPTY, "empty")
    verdicts.reject(np.array([True, True, False, False]), Reason.OUTSIDE_BOUNDS, ["first", "second"])
    assert verdicts.ok.tolist() == [False, False, False, True]
    assert verdicts.problems == {
        10: [(Reason.GEOMETRY_EMPTY, "empty")],
        11: [(Reason.OUTSIDE_BOUNDS, "second")],  # its own message: one per row of the mask
        12: [(Reason.GEOMETRY_EMPTY, "empty")],
    }
