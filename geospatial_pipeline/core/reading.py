"""Raw landing files → bounded chunks of records; anything unreadable becomes a reject, never an exception.

A chunk keeps each record's original text and position (source key, 1-based line or feature number), so
a quarantined record can always be traced back to the byte range that produced it.
"""

from __future__ import annotations

import gc
import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from geospatial_pipeline.core.records import Reason
from geospatial_pipeline.core.spatial import RaggedPolygons, flatten_polygons

LINE_SUFFIXES = (".geojsonl", ".geojsonseq", ".ndjson", ".jsonl")
COLLECTION_SUFFIXES = (".geojson", ".json")
READ_BLOCK = 4 << 20


def is_raw_batch_file(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    if name.startswith((".", "_")):
        return False
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(LINE_SUFFIXES + COLLECTION_SUFFIXES)


@dataclass
class RawChunk:
    """Up to `chunk_records` records of one source file, plus records rejected while reading."""

    source_key: str
    texts: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    collection_crs: str | None = None
    # Records that never became JSON text worth parsing: (line, text prefix, reason, message).
    read_rejects: list[tuple[int, bytes, Reason, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts) + len(self.read_rejects)


@dataclass
class ParsedChunk:
    """A chunk after JSON parsing: properties and geometry per record, reasons per failed record.

    A plain Polygon or MultiPolygon is in `polygons` (flat coordinate arrays, by record index) and has no
    text in `geometries`; any other geometry keeps its GeoJSON text there for GEOS to read.
    """

    source_key: str
    texts: list[bytes]
    lines: list[int]
    properties: list[Any]
    geometries: list[bytes | None]
    reasons: dict[int, list[tuple[Reason, str]]]
    collection_crs: str | None = None
    polygons: RaggedPolygons | None = None
    # Records Python's json had to read (NaN, Infinity, lone surrogates...): never on a fast path.
    lenient: list[int] = field(default_factory=list)


def _open_decompressed(key: str, stream: IO[bytes]) -> IO[bytes]:
    return gzip.GzipFile(fileobj=stream, mode="rb") if key.lower().endswith(".gz") else stream


def _base_name(key: str) -> str:
    name = key.lower()
    return name[:-3] if name.endswith(".gz") else name


def iter_chunks(
    key: str,
    stream: IO[bytes],
    *,
    chunk_records: int,
    max_record_bytes: int,
    max_collection_bytes: int,
) -> Iterator[RawChunk]:
    """Yield bounded chunks of one raw file. Memory stays within a chunk plus one read block."""
    reader = _open_decompressed(key, stream)
    if _base_name(key).endswith(COLLECTION_SUFFIXES):
        yield from _collection_chunks(key, reader, chunk_records, max_collection_bytes)
    else:
        yield from _line_chunks(key, reader, chunk_records, max_record_bytes)


def _line_chunks(key: str, reader: IO[bytes], chunk_records: int, max_record_bytes: int) -> Iterator[RawChunk]:
    chunk = RawChunk(key)
    pending = b""
    line_no = 0
    skipping = False  # inside an over-long line, dropping bytes until its newline

    def emit(text: bytes) -> None:
        nonlocal chunk
        text = text.strip(b"\r\x1e \t")
        if text:
            chunk.texts.append(text)
            chunk.lines.append(line_no)

    while True:
        try:
            block = reader.read(READ_BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            chunk.read_rejects.append(
                (line_no + 1, pending[:1024], Reason.FILE_UNREADABLE, f"cannot read past line {line_no}: {exc}")
            )
            yield chunk
            return
        if not block:
            break
        parts = block.split(b"\n")
        parts[0] = pending + parts[0] if not skipping else parts[0]
        for part in parts[:-1]:
            line_no += 1
            if skipping:
                skipping = False
                continue
            if len(part) > max_record_bytes:
                chunk.read_rejects.append(_too_large(line_no, part, max_record_bytes))
            else:
                emit(part)
            if len(chunk) >= chunk_records:
                yield chunk
                chunk = RawChunk(key)
        pending = parts[-1] if not (skipping and len(parts) == 1) else b""
        if not skipping and len(pending) > max_record_bytes:
            chunk.read_rejects.append(_too_large(line_no + 1, pending, max_record_bytes))
            pending, skipping = b"", True
    if pending and not skipping:
        line_no += 1
        emit(pending)
    if len(chunk):
        yield chunk


def _too_large(line_no: int, text: bytes, limit: int) -> tuple[int, bytes, Reason, str]:
    return (line_no, text[:1024], Reason.RECORD_TOO_LARGE, f"record exceeds max_record_bytes={limit}")


def _collection_chunks(
    key: str, reader: IO[bytes], chunk_records: int, max_collection_bytes: int
) -> Iterator[RawChunk]:
    try:
        body = reader.read(max_collection_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        yield RawChunk(key, read_rejects=[(0, b"", Reason.FILE_UNREADABLE, f"cannot read file: {exc}")])
        return
    if len(body) > max_collection_bytes:
        message = (
            f"FeatureCollection exceeds max_collection_bytes={max_collection_bytes}; "
            "deliver large batches as GeoJSON lines (.geojsonl)"
        )
        yield RawChunk(key, read_rejects=[(0, body[:1024], Reason.RECORD_TOO_LARGE, message)])
        return
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            yield RawChunk(key, read_rejects=[(0, body[:1024], Reason.MALFORMED_JSON, f"file is not JSON: {exc}")])
            return
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc]}
    if not (isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list)):
        yield RawChunk(
            key,
            read_rejects=[(0, body[:1024], Reason.NOT_A_FEATURE, "file is neither a FeatureCollection nor a Feature")],
        )
        return
    crs = _legacy_crs(doc.get("crs"))
    features = doc["features"]
    for start in range(0, len(features), chunk_records):
        part = features[start : start + chunk_records]
        texts = [_dumps_lenient(f) for f in part]
        yield RawChunk(key, texts=texts, lines=list(range(start + 1, start + 1 + len(part))), collection_crs=crs)


def _dumps_lenient(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, allow_nan=True).encode()


def _legacy_crs(member: Any) -> str | None:
    """The 2008 GeoJSON `crs` member: {"type": "name", "properties": {"name": "urn:ogc:def:crs:..."}}."""
    if isinstance(member, dict):
        props = member.get("properties")
        if isinstance(props, dict) and isinstance(props.get("name"), str):
            return props["name"]
    return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding a chunk allocates millions of small lists that all live until the chunk is flattened; the
    cyclic GC would rescan them over and over (it tripled the decode time). They hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_chunk(chunk: RawChunk, *, flatten: bool = True) -> ParsedChunk:
    """JSON-decode every record; a record that is not a GeoJSON Feature gets a reason, the rest go on.

    With `flatten` (the default) plain Polygons/MultiPolygons go to `polygons` as arrays instead of text.
    """
    n = len(chunk.texts)
    properties: list[Any] = [None] * n
    geometries: list[bytes | None] = [None] * n
    reasons: dict[int, list[tuple[Reason, str]]] = {}
    lenient: list[int] = []
    candidates: list[tuple[int, bool, Any]] = []
    decoded: list[Any] = []
    with _gc_paused():
        polygons = _parse_records(chunk, properties, geometries, reasons, lenient, candidates, decoded, flatten)
        # Freed while the collector is off: re-enabled with these alive, its first pass would walk them all.
        candidates.clear()
        decoded.clear()
    # Records that failed while reading are appended so the parsed chunk accounts for all of them.
    texts, lines = list(chunk.texts), list(chunk.lines)
    for line, text, reason, message in chunk.read_rejects:
        reasons[len(texts)] = [(reason, message)]
        texts.append(text)
        lines.append(line)
        properties.append(None)
        geometries.append(None)
    return ParsedChunk(
        chunk.source_key, texts, lines, properties, geometries, reasons, chunk.collection_crs, polygons, lenient
    )


def _parse_records(chunk, properties, geometries, reasons, lenient, candidates, decoded, flatten):
    loads = orjson.loads
    for i, text in enumerate(chunk.texts):
        try:
            feature = loads(text)
            strict = True
        except orjson.JSONDecodeError as exc:
            feature, strict = _loads_lenient(text, exc)
            if feature is None:
                reasons[i] = [(Reason.MALFORMED_JSON, f"not valid JSON: {exc}")]
                continue
            lenient.append(i)
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            reasons[i] = [(Reason.NOT_A_FEATURE, "record is not a GeoJSON Feature object")]
            continue
        props = feature.get("properties")
        properties[i] = props if isinstance(props, dict) else {}
        if not isinstance(props, dict):
            reasons[i] = [(Reason.NOT_A_FEATURE, "Feature has no properties object")]
        geometry = feature.get("geometry")
        if geometry is None:
            continue
        if not strict and _has_non_finite(geometry):
            reasons.setdefault(i, []).append((Reason.GEOMETRY_NON_FINITE, "coordinates contain NaN or Infinity"))
            continue
        if flatten and strict and type(geometry) is dict:
            kind = geometry.get("type")
            coordinates = geometry.get("coordinates")
            if (kind == "Polygon" or kind == "MultiPolygon") and type(coordinates) is list:
                candidates.append((i, kind == "MultiPolygon", coordinates))
                decoded.append(geometry)
                continue
        _encode_geometry(i, geometry, strict, geometries, reasons)
    if not candidates:
        return None
    polygons, not_plain = flatten_polygons(candidates)
    if not_plain:
        position = {c[0]: k for k, c in enumerate(candidates)}
        for i in not_plain:
            _encode_geometry(i, decoded[position[i]], True, geometries, reasons)
    return polygons


def _encode_geometry(i: int, geometry: Any, strict: bool, geometries: list, reasons: dict) -> None:
    """The geometry's GeoJSON text, for GEOS to read and judge."""
    try:
        geometries[i] = orjson.dumps(geometry) if strict else json.dumps(geometry).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # nested deeper than any geometry can be
        message = f"geometry cannot be re-encoded: {exc}"
        reasons.setdefault(i, []).append((Reason.GEOMETRY_UNPARSEABLE, message))


def _loads_lenient(text: bytes, _exc: Exception) -> tuple[Any, bool]:
    """Python's json accepts NaN/Infinity and huge numbers, so such records get a precise reason later."""
    try:
        return json.loads(text), False
    except (ValueError, RecursionError):
        return None, False


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False
