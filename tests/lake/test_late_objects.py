"""Late objects: late_data/{D}/{field_id}.* has one copy per field while several partitions may detect the
field late. The latest arrival owns it (then the later detecting partition), so re-running partitions in
any order leaves the same objects."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from geospatial_pipeline.lake.late_objects import _late_object_winners

T0 = dt.datetime(2025, 1, 4, 8, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
P2, P3 = dt.date(2025, 1, 2), dt.date(2025, 1, 3)


def _rows(*arrivals: tuple[str, dt.datetime]) -> pa.Table:
    return pa.table(
        {
            "field_id": pa.array([f for f, _ in arrivals], pa.string()),
            "arrival_time": pa.array([a for _, a in arrivals], pa.timestamp("us", tz="UTC")),
        }
    )


def test_with_no_stored_rival_every_row_writes_its_objects():
    rows = _rows(("F-1", T0), ("F-2", T0))
    assert _late_object_winners(rows, P3, {}) is rows


def test_a_stored_later_arrival_keeps_its_objects_and_an_earlier_one_gives_them_up():
    rows = _rows(("F-1", T0), ("F-2", T0), ("F-3", T0))
    best = {"F-1": (T0 + HOUR, P2), "F-2": (T0 - HOUR, P2)}  # F-3: no other run stored it
    assert _late_object_winners(rows, P3, best)["field_id"].to_pylist() == ["F-2", "F-3"]


def test_on_equal_arrivals_the_later_detecting_partition_owns_the_objects():
    rows = _rows(("F-1", T0))
    assert _late_object_winners(rows, P3, {"F-1": (T0, P2)}).num_rows == 1  # this run detected it later
    assert _late_object_winners(rows, P2, {"F-1": (T0, P3)}).num_rows == 0  # the stored run did
