"""A chunk of raw record texts → what each record says: its JSON structure (scan), its validated properties
(records), its geometry as arrays (geometry.read), and the reasons of every record that fails on the way.
One reader for every record, however it is spelled; a bad record costs its own rejection only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from geospatial_pipeline.core import scan
from geospatial_pipeline.core.arrays import Bools, Int64s, Objects
from geospatial_pipeline.core.geometry.read import read_geometries
from geospatial_pipeline.core.geometry.shapes import Shapes
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.reasons import Problems, Reason, Verdicts
from geospatial_pipeline.core.records import PropertyColumns, property_columns


@dataclass
class ParsedChunk:
    """Every record of a chunk read: rejected-while-reading records come last, as in the chunk."""

    source_key: str
    texts: list[bytes]
    lines: Int64s
    problems: Problems  # reasons found so far, by record
    structural: Bools  # not a Feature at all: nothing further can be judged
    properties: PropertyColumns
    crs: Objects  # the CRS each record names (its `crs` property, else the collection's), or None
    shapes: Shapes  # the geometries read (index: record)
    has_z: Bools  # per shape: positions of three numbers or more


def parse_chunk(chunk: RawChunk) -> ParsedChunk:
    texts = list(chunk.texts)
    n = len(texts)
    lengths = np.fromiter(map(len, texts), np.int64, n)
    ends = np.cumsum(lengths)
    joined = b"".join(texts)
    sc = scan.scan(joined, ends - lengths, ends)

    problems: Problems = {}
    bad_json = sc.status == scan.MALFORMED
    for r in np.flatnonzero(bad_json).tolist():
        problems[r] = [(Reason.MALFORMED_JSON, sc.message(r))]
    not_feature = ~bad_json & ((sc.status == scan.NOT_OBJECT) | ~sc.is_feature)
    for r in np.flatnonzero(not_feature).tolist():
        problems[r] = [(Reason.NOT_A_FEATURE, "record is not a GeoJSON Feature object")]
    no_properties = ~bad_json & ~not_feature & (sc.props_kind != scan.OBJECT)
    for r in np.flatnonzero(no_properties).tolist():
        problems[r] = [(Reason.NOT_A_FEATURE, "Feature has no properties object")]
    structural = bad_json | not_feature | no_properties

    rows = np.flatnonzero(~structural)
    starts, stops = sc.props_start[rows].tolist(), sc.props_end[rows].tolist()
    props = property_columns([joined[s:e] for s, e in zip(starts, stops, strict=True)], sc.props_nonfinite[rows])
    properties = _spread(props, rows, n)
    for k, reasons in props.problems.items():
        problems.setdefault(int(rows[k]), []).extend(reasons)
    crs = np.full(n, chunk.collection_crs, dtype=object)
    named = np.flatnonzero(properties.crs != None)  # noqa: E711 - elementwise comparison
    crs[named] = properties.crs[named]
    for r in rows[~props.valid].tolist():  # a record whose properties fail is still judged in its own CRS
        named_crs = _crs_of(joined[sc.props_start[r] : sc.props_end[r]])
        crs[r] = named_crs if named_crs is not None else crs[r]

    verdicts = Verdicts(len(rows), rows)
    shapes, has_z = read_geometries(sc, verdicts)
    for r, reasons in verdicts.problems.items():
        problems.setdefault(r, []).extend(reasons)
    shapes.index = rows[shapes.index]

    lines = list(chunk.lines)
    for line, text, reason, message in chunk.read_rejects:  # rejected while reading: appended, accounted for
        problems[len(texts)] = [(reason, message)]
        texts.append(text)
        lines.append(line)
    extra = len(chunk.read_rejects)
    if extra:
        structural = np.concatenate([structural, np.ones(extra, dtype=bool)])
        properties = _spread(properties, np.arange(n), n + extra)
        crs = np.concatenate([crs, np.full(extra, None, dtype=object)])
    return ParsedChunk(
        chunk.source_key, texts, np.asarray(lines, dtype=np.int64), problems, structural, properties, crs, shapes, has_z
    )


def _spread(props: PropertyColumns, rows: Int64s, n: int) -> PropertyColumns:
    """Columns of `rows` placed at those positions among n records; other positions not valid."""
    at = np.full(n, -1, dtype=np.int64)
    at[rows] = np.arange(len(rows))
    taken = np.maximum(at, 0)
    missing = at < 0
    index = pa.array(at, mask=missing)

    def spread(values: np.ndarray, blank: object) -> np.ndarray:  # any dtype; numpy cannot tie blank to it
        out = values[taken] if len(values) else np.full(n, blank, dtype=values.dtype)
        out = out.copy()
        out[missing] = blank
        return out

    return PropertyColumns(
        spread(props.valid, False),
        props.field_id.take(index),
        spread(props.intended, np.datetime64("NaT")),
        spread(props.arrival, np.datetime64("NaT")),
        props.data.take(index),
        spread(props.crs, None),
        {},
    )


def _crs_of(properties_text: bytes) -> str | None:
    """The `crs` property of a properties object that failed validation, if it names one as text."""
    try:
        value = orjson.loads(properties_text)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(properties_text)
        except (ValueError, RecursionError):
            return None
    crs = value.get("crs") if isinstance(value, dict) else None
    return crs if isinstance(crs, str) and crs else None
