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

import numpy as np
import orjson

from geospatial_pipeline.core import coordinates_text
from geospatial_pipeline.core.records import Reason
from geospatial_pipeline.core.spatial import (
    RaggedPolygons,
    concat_by_index,
    flatten_polygons,
    read_polygon_coordinates_at,
)

LINE_SUFFIXES = (".geojsonl", ".geojsonseq", ".ndjson", ".jsonl")
COLLECTION_SUFFIXES = (".geojson", ".json")
READ_BLOCK = 4 << 20
# Read plain polygons' coordinates from the record text (_text_lane) instead of decoding them into lists.
# Tests switch it off to hold both ways to the same results.
COORDINATES_FROM_TEXT = True


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


def open_decompressed(key: str, stream: IO[bytes]) -> IO[bytes]:
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
    reader = open_decompressed(key, stream)
    if _base_name(key).endswith(COLLECTION_SUFFIXES):
        yield from _collection_chunks(key, reader, chunk_records, max_collection_bytes)
    else:
        yield from _line_chunks(key, reader, chunk_records, max_record_bytes)


def _line_chunks(
    key: str, reader: IO[bytes], chunk_records: int, max_record_bytes: int, first_line: int = 1
) -> Iterator[RawChunk]:
    chunk = RawChunk(key)
    pending = b""
    line_no = first_line - 1
    skipping = False  # inside an over-long line, dropping bytes until its newline

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
        complete = parts[:-1]
        if skipping and complete:  # the first newline ends the over-long line: nothing of it is a record
            line_no += 1
            skipping = False
            complete = complete[1:]
        elif complete:
            complete[0] = pending + complete[0]
        first = line_no + 1
        line_no += len(complete)
        if complete and max(map(len, complete)) > max_record_bytes:
            pieces = _lines_with_rejects(complete, first, max_record_bytes)
        else:  # the usual block: every line is a record or blank, and no Python runs per line but a strip
            texts = [part.strip(_LINE_PADDING) for part in complete]
            if all(texts):
                pieces = [(texts, range(first, first + len(texts)), [])]
            else:
                kept = [j for j, text in enumerate(texts) if text]
                pieces = [([texts[j] for j in kept], [first + j for j in kept], [])]
        if len(parts) == 1 and not skipping:
            pending += parts[0]
        else:
            pending = parts[-1] if not skipping else b""
        if not skipping and len(pending) > max_record_bytes:  # the next line is over-long already
            pieces.append(([], [], [_too_large(line_no + 1, pending, max_record_bytes)]))
            pending, skipping = b"", True
        for texts, numbers, rejects in pieces:  # a chunk goes out as soon as it is full, as line by line
            start = 0
            while start < len(texts):
                take = min(len(texts) - start, chunk_records - len(chunk))
                chunk.texts.extend(texts[start : start + take])
                chunk.lines.extend(numbers[start : start + take])
                start += take
                if len(chunk) >= chunk_records:
                    yield chunk
                    chunk = RawChunk(key)
            for reject in rejects:
                chunk.read_rejects.append(reject)
                if len(chunk) >= chunk_records:
                    yield chunk
                    chunk = RawChunk(key)
    if pending and not skipping:
        line_no += 1
        text = pending.strip(_LINE_PADDING)
        if text:
            chunk.texts.append(text)
            chunk.lines.append(line_no)
    if len(chunk):
        yield chunk


_LINE_PADDING = b"\r\x1e \t"  # CR of CRLF files, RFC 8142's record separator, spaces


@dataclass
class LineBlock:
    """Whole lines of a line-delimited file, cut where a worker process can take them: `text` starts at
    line `first_line`; `error` is the read error met right after it (the file ends there)."""

    text: bytes
    first_line: int
    error: str | None = None


def line_blocks(reader: IO[bytes], block_bytes: int, max_record_bytes: int) -> Iterator[LineBlock]:
    """The decompressed stream in blocks of about `block_bytes` that end at a newline (the last block may
    not), for block_chunks to split where the block is classified; nothing runs per line here.

    The stream is read in READ_BLOCK units, as _line_chunks reads it, so a read error falls after the same
    bytes. An over-long line keeps only max_record_bytes + 1 bytes, still over the limit and so rejected the
    same way, and memory stays bounded whatever the line's length."""
    parts: list[bytes] = []  # what has been read since the last cut
    size = 0
    tail = 0  # bytes of `parts` after its last newline: the line not finished yet
    line = 1
    skipping = False  # inside an over-long line whose first max_record_bytes + 1 bytes are in `parts`
    while True:
        try:
            data = reader.read(READ_BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            yield LineBlock(b"".join(parts), line, str(exc))
            return
        if not data:
            break
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                continue
            data, skipping = data[newline:], False
        parts.append(data)
        size += len(data)
        last_newline = data.rfind(b"\n")
        tail = tail + len(data) if last_newline < 0 else len(data) - last_newline - 1
        if tail > max_record_bytes:
            keep = size - tail + max_record_bytes + 1
            parts, size, tail, skipping = [b"".join(parts)[:keep]], keep, max_record_bytes + 1, True
        if size >= block_bytes and size > tail:
            text = b"".join(parts)
            cut = size - tail
            yield LineBlock(text[:cut], line)
            line += text.count(b"\n", 0, cut)
            parts, size = ([text[cut:]] if tail else []), tail
    if parts:
        yield LineBlock(b"".join(parts), line)


class _Replay:
    """A block read back as its file was: the same bytes, then the same error."""

    def __init__(self, block: LineBlock):
        self._text = memoryview(block.text)
        self._at = 0
        self._error = block.error

    def read(self, size: int) -> bytes:
        if self._at >= len(self._text) and self._error is not None:
            raise OSError(self._error)
        out = bytes(self._text[self._at : self._at + size])
        self._at += len(out)
        return out


def block_chunks(key: str, block: LineBlock, chunk_records: int, max_record_bytes: int) -> Iterator[RawChunk]:
    """The chunks of one block: what _line_chunks gives for those lines of the whole file."""
    return _line_chunks(key, _Replay(block), chunk_records, max_record_bytes, first_line=block.first_line)


def _lines_with_rejects(parts: list[bytes], first: int, max_record_bytes: int) -> list[tuple[list, list, list]]:
    """Runs of records between over-long lines, each over-long line a reject after its run (line order)."""
    pieces: list[tuple[list, list, list]] = []
    texts: list[bytes] = []
    numbers: list[int] = []
    for j, part in enumerate(parts):
        if len(part) > max_record_bytes:
            pieces.append((texts, numbers, [_too_large(first + j, part, max_record_bytes)]))
            texts, numbers = [], []
        elif text := part.strip(_LINE_PADDING):
            texts.append(text)
            numbers.append(first + j)
    pieces.append((texts, numbers, []))
    return pieces


def _too_large(line_no: int, text: bytes, limit: int) -> tuple[int, bytes, Reason, str]:
    """The reject of an over-long line, quoting its start: no more than was read of it wherever the read
    blocks fell (over `limit` bytes), so the quote is the same however the file is read."""
    quote = text[: min(1024, limit + 1)]
    return (line_no, quote, Reason.RECORD_TOO_LARGE, f"record exceeds max_record_bytes={limit}")


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
    lane_texts, lane = _text_lane(chunk.texts) if flatten and COORDINATES_FROM_TEXT else (None, None)
    in_lane: list[int] = []
    for i, text in enumerate(chunk.texts):
        if lane_texts is not None and lane_texts[i] is not None:
            # The common case: decoded without its coordinates, which are read. Anything else decodes whole.
            kind, substitute = lane_texts[i]
            try:
                feature = loads(substitute)
            except orjson.JSONDecodeError:
                feature = None
            if type(feature) is dict and feature.get("type") == "Feature":
                props = feature.get("properties")
                geometry = feature.get("geometry")
                if (
                    type(props) is dict
                    and type(geometry) is dict
                    and geometry.get("type") == kind
                    and "coordinates" in geometry
                ):
                    properties[i] = props
                    in_lane.append(i)
                    continue
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
    if not in_lane:
        lane = None
    elif len(in_lane) < len(lane):  # read, but decoded whole after all
        lane = lane.take(lane.index.searchsorted(in_lane))
    if not candidates:
        return lane
    polygons, not_plain = flatten_polygons(candidates)
    if not_plain:
        position = {c[0]: k for k, c in enumerate(candidates)}
        for i in not_plain:
            _encode_geometry(i, decoded[position[i]], True, geometries, reasons)
    return polygons if lane is None else concat_by_index([lane, polygons])


def _text_lane(texts: list[bytes]) -> tuple[list[tuple[str, bytes] | None] | None, RaggedPolygons | None]:
    """Plain Polygon/MultiPolygon coordinates read straight from the record texts; and per record read so,
    its geometry type and its text with `[]` in place of the coordinates, for orjson to decode the rest.

    Decoding the coordinates into lists, and walking those, was most of the parse. A record goes this way
    only if its coordinates value is certainly where it was looked for (coordinates_text.find_spans) and is
    valid and plain (read_polygon_coordinates_at): then its text is valid JSON exactly when the substitute is, and
    decodes to the same but for the coordinates. Every other record is decoded whole, as before.
    """
    n = len(texts)
    if n == 0:
        return None, None
    lengths = np.fromiter(map(len, texts), np.int64, n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    joined = b"".join(texts)
    value_starts, value_ends, multi = coordinates_text.find_spans(joined, starts, ends)
    located = np.flatnonzero(value_starts >= 0)
    if not len(located):
        return None, None
    lane = read_polygon_coordinates_at(joined, value_starts[located], value_ends[located], multi[located])
    if not len(lane):
        return None, None
    rows = located[lane.index]
    lane.index = rows
    lane_texts: list[tuple[str, bytes] | None] = [None] * n
    cut_start = (value_starts[rows] - starts[rows]).tolist()
    cut_end = (value_ends[rows] - starts[rows]).tolist()
    for k, start, end, is_multi in zip(rows.tolist(), cut_start, cut_end, multi[rows].tolist(), strict=True):
        text = texts[k]
        lane_texts[k] = ("MultiPolygon" if is_multi else "Polygon", text[:start] + b"[]" + text[end:])
    return lane_texts, lane


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
