"""Raw landing files → bounded chunks of records; anything unreadable becomes a reject, never an exception.

A chunk keeps each record's original text and position (source key, 1-based line or feature number), so
a quarantined record can always be traced back to the byte range that produced it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from geospatial_pipeline.core import collection
from geospatial_pipeline.core.reasons import Reason

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


class ByteReader(Protocol):
    """All the splitting into records asks of a stream: read(size) bytes, b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


class ByteStream(ByteReader, Protocol):
    """A raw file's stream, as gzip takes it (it seeks only when asked to rewind, which nothing here does)."""

    def seek(self, offset: int, /) -> object: ...


def open_decompressed(key: str, stream: ByteStream) -> ByteReader:
    return gzip.GzipFile(fileobj=stream, mode="rb") if key.lower().endswith(".gz") else stream


def _base_name(key: str) -> str:
    name = key.lower()
    return name[:-3] if name.endswith(".gz") else name


def iter_chunks(
    key: str,
    stream: ByteStream,
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
    key: str, reader: ByteReader, chunk_records: int, max_record_bytes: int, first_line: int = 1
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
        pieces: list[_Piece]
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
# A run of record texts, their line numbers, then the rejects that follow them (see _lines_with_rejects).
_Piece: TypeAlias = tuple[list[bytes], Sequence[int], list[tuple[int, bytes, Reason, str]]]


@dataclass
class LineBlock:
    """Whole lines of a line-delimited file, cut where a worker process can take them: `text` starts at
    line `first_line`; `error` is the read error met right after it (the file ends there)."""

    text: bytes
    first_line: int
    error: str | None = None


def line_blocks(reader: ByteReader, block_bytes: int, max_record_bytes: int) -> Iterator[LineBlock]:
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


def _lines_with_rejects(parts: list[bytes], first: int, max_record_bytes: int) -> list[_Piece]:
    """Runs of records between over-long lines, each over-long line a reject after its run (line order)."""
    pieces: list[_Piece] = []
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
    key: str, reader: ByteReader, chunk_records: int, max_collection_bytes: int
) -> Iterator[RawChunk]:
    """A .geojson document read whole (up to max_collection_bytes): its features, or one Feature, as records
    in their original text, numbered from 1; a document that is neither is one quarantined record."""
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
    found = collection.read(body)
    if found.error is not None:
        yield RawChunk(key, read_rejects=[(0, body[:1024], Reason.MALFORMED_JSON, found.error)])
        return
    if found.kind == 2:
        yield RawChunk(key, texts=[body], lines=[1])
        return
    if found.kind != 1:
        message = "file is neither a FeatureCollection nor a Feature"
        yield RawChunk(key, read_rejects=[(0, body[:1024], Reason.NOT_A_FEATURE, message)])
        return
    crs = _legacy_crs(found.crs)
    for start in range(0, len(found.starts), chunk_records):
        stop = start + chunk_records
        texts = [
            body[s:e] for s, e in zip(found.starts[start:stop].tolist(), found.ends[start:stop].tolist(), strict=True)
        ]
        yield RawChunk(key, texts=texts, lines=list(range(start + 1, start + 1 + len(texts))), collection_crs=crs)


def _legacy_crs(member: bytes | None) -> str | None:
    """The 2008 GeoJSON `crs` member: {"type": "name", "properties": {"name": "urn:ogc:def:crs:..."}}."""
    if member is None:
        return None
    value = json.loads(member)
    props = value.get("properties") if isinstance(value, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    return name if isinstance(name, str) else None
