"""The small published objects: the two late objects of each late field (an RFC 7946 Feature and a text
note) and the partition's manifest."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from geospatial_pipeline.core.lateness import iso_utc_texts
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore, StagedWriter


def late_texts(field_ids: pa.Array, intended: pa.Array, arrival: pa.Array, detected_in: pa.Array) -> pa.Array:
    """The text objects of late fields, a column at a time (dates and instants already as ISO text)."""
    return pc.binary_join_element_wise(
        "Late field: ",
        field_ids,
        " for partition ",
        intended,
        ", arrived ",
        arrival,
        ", detected in ",
        detected_in,
        "\n",
        "",
    )


def late_feature(row: dict[str, Any]) -> bytes:
    """An RFC 7946 Feature (lon/lat, CCW exterior rings) with every property of the published row.

    `row` holds the row's values with processing_date, arrival_time and detected_in already as text."""
    props = {
        "field_id": row["field_id"],
        "processing_date": row["processing_date"],
        "arrival_time": row["arrival_time"],
        "arrived_late": True,
        "late_reason": row["late_reason"],
        "detected_in": row["detected_in"],
        "source_crs": row["source_crs"],
        "area_ha": row["area_ha"],
        "perimeter_m": row["perimeter_m"],
        "repaired": row["repaired"],
        "source_key": row["source_key"],
        "source_line": row["source_line"],
        "data": orjson.Fragment(row["data"]),
    }
    return orjson.dumps(
        {
            "type": "Feature",
            "id": row["field_id"],
            "geometry": orjson.Fragment(row["geometry_geojson"]),
            "properties": props,
        }
    )


def write_late_objects(store: ObjectStore | StagedWriter, late: pa.Table, concurrency: int) -> list[str]:
    """Two objects per late field (the seed's contract), PUT concurrently through a bounded pool."""
    jobs = late_object_jobs(late)
    if not jobs:
        return []
    store.put_many(jobs, max(1, concurrency), etags=False)
    return [k for k, _, _ in jobs]


def late_object_jobs(late: pa.Table) -> list[tuple[str, bytes, str]]:
    """(key, body, content type) of the two objects of each late row, in row order.

    Keys, dates and texts are built a column at a time (these objects are a tenth of a batch and each one
    is small, so per-row Python would cost more than writing them); only the Feature is encoded per row."""
    if late.num_rows == 0:
        return []
    texts = {
        "processing_date": pc.cast(late["processing_date"], pa.string()),
        "arrival_time": pa.array(iso_utc_texts(late["arrival_time"].cast(pa.int64()).to_numpy()), pa.string()),
        "detected_in": pc.cast(late["detected_in"], pa.string()),
    }
    names = [*_FEATURE_VALUES, *texts]
    values = [late[n].to_pylist() for n in _FEATURE_VALUES] + [t.to_pylist() for t in texts.values()]
    features = [late_feature(dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
    notes = late_texts(late["field_id"], texts["processing_date"], texts["arrival_time"], texts["detected_in"])
    feature_keys, note_keys = keys.late_object_keys(late["processing_date"], late["field_id"], (".geojson", ".txt"))
    jobs: list[tuple[str, bytes, str]] = []
    for feature_key, feature, note_key, note in zip(
        feature_keys, features, note_keys, notes.cast(pa.binary()).to_pylist(), strict=True
    ):
        jobs.append((feature_key, feature, "application/geo+json"))
        jobs.append((note_key, note, "text/plain; charset=utf-8"))
    return jobs


# The late row's values a Feature carries as they are (its dates go in as text).
_FEATURE_VALUES = (
    "field_id",
    "late_reason",
    "source_crs",
    "area_ha",
    "perimeter_m",
    "repaired",
    "source_key",
    "source_line",
    "data",
    "geometry_geojson",
)
# Every column the two objects are made from (not the WKB geometry, the larger half of a late row).
LATE_OBJECT_COLUMNS = [*_FEATURE_VALUES, "processing_date", "arrival_time", "detected_in"]


def write_manifest(store: ObjectStore, partition: dt.date, manifest: dict[str, Any]) -> ObjectInfo:
    body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return store.put_bytes(keys.manifest_key(partition), body, "application/json")
