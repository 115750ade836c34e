"""The late-arrival rule, one pure function over whole columns."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

import numpy as np

from geospatial_pipeline.core.arrays import Datetimes, Int8s, Int64s, Strs


class Timing(IntEnum):
    ON_TIME = 0
    LATE = 1
    FUTURE = 2  # intended for a partition after the one being processed: rejected


def window_closes(intended: Datetimes, window: dt.timedelta) -> Datetimes:
    """The last on-time instant for each intended date (the boundary itself is on time)."""
    starts: Datetimes = intended.astype("datetime64[us]")
    return starts + np.timedelta64(int(window.total_seconds() * 1_000_000), "us")


def classify_timing(
    intended: Datetimes,
    arrival: Datetimes,
    partition: dt.date,
    window: dt.timedelta,
) -> Int8s:
    """With D the intended date and P the partition: on time iff D == P and arrival <= D 00:00 UTC + window.

    D < P, or D == P after the window, is late; D > P is FUTURE. `intended` is datetime64[D],
    `arrival` datetime64[us] in UTC.
    """
    p = np.datetime64(partition, "D")
    timing = np.full(len(intended), Timing.LATE, dtype=np.int8)
    timing[(intended == p) & (arrival <= window_closes(intended, window))] = Timing.ON_TIME
    timing[intended > p] = Timing.FUTURE
    return timing


def late_reason(intended: dt.date, arrival: dt.datetime, partition: dt.date, window: dt.timedelta) -> str:
    """Why a field is late, in words a person reads in the late object."""
    closes = dt.datetime.combine(intended, dt.time(), dt.UTC) + window
    if intended < partition:
        return f"delivered in partition {partition.isoformat()}, after its intended partition {intended.isoformat()}"
    return f"arrived {iso_utc(arrival)}, after the lateness window closed at {iso_utc(closes)}"


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{value.microsecond:06d}Z" if value.microsecond else "Z"
    )


def iso_utc_texts(micros: Int64s | Datetimes) -> Strs:
    """iso_utc for a column of UTC instants (int64 microseconds since the epoch, or datetime64[us])."""
    instants = np.asarray(micros).astype("datetime64[us]")
    whole = np.char.add(np.datetime_as_string(instants, unit="s"), "Z").astype("U32")  # room for the fraction
    fraction = instants.astype(np.int64) % 1_000_000 != 0
    if fraction.any():
        whole[fraction] = np.char.add(np.datetime_as_string(instants[fraction], unit="us"), "Z")
    return whole
