"""Line-delimited files into chunks: whatever the read-block size, the same records with the same line
numbers, over-long lines as rejects in place, and chunks that are full except the last (an over-long line
found at a read block's end used to be added past a full chunk)."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geospatial_pipeline.core.reading as reading
from geospatial_pipeline.core.reasons import Reason

PADDING = b"\r\x1e \t"
LINE = st.one_of(
    st.sampled_from([b"", b"  ", b"\r", b"\x1e", b"\t \r"]),
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b),
    st.builds(lambda n, c: c * n, st.integers(1, 300), st.sampled_from([b"x", b" ", b"{"])),
)


def expected(data: bytes, max_record_bytes: int) -> tuple[list[tuple[int, bytes]], list[int]]:
    """Records (line, stripped text) and over-long line numbers, read from the whole text at once."""
    records, too_large = [], []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    for number, line in enumerate(parts, start=1):
        if len(line) > max_record_bytes:
            too_large.append(number)
        elif line.strip(PADDING):
            records.append((number, line.strip(PADDING)))
    return records, too_large


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(LINE, max_size=60),
    trailing_newline=st.booleans(),
    block=st.sampled_from([1, 2, 7, 64, 1 << 20]),
    chunk_records=st.integers(1, 9),
    max_record_bytes=st.sampled_from([3, 30, 250, 10_000]),
)
def test_chunks_hold_every_line_once_in_order_whatever_the_block_size(
    lines, trailing_newline, block, chunk_records, max_record_bytes
):
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "READ_BLOCK", block)
        chunks = list(reading._line_chunks("raw/x.geojsonl", io.BytesIO(data), chunk_records, max_record_bytes))

    records, too_large = expected(data, max_record_bytes)
    assert [(n, t) for c in chunks for n, t in zip(c.lines, c.texts, strict=True)] == records
    rejects = [r for c in chunks for r in c.read_rejects]
    assert [r[0] for r in rejects] == too_large
    assert all(r[2] is Reason.RECORD_TOO_LARGE for r in rejects)
    whole = data.split(b"\n")
    assert all(whole[r[0] - 1].startswith(r[1]) and 0 < len(r[1]) <= 1024 for r in rejects)
    # Each chunk goes out as soon as it is full, rejects counted: only the last one may be short.
    assert all(len(c) == chunk_records for c in chunks[:-1])
    assert all(0 < len(c) <= chunk_records for c in chunks)


def test_a_line_over_the_limit_between_records_stays_in_place_across_chunks():
    data = b"a\nb\n" + b"x" * 50 + b"\nc\n\nd\n"
    chunks = list(reading._line_chunks("raw/x.geojsonl", io.BytesIO(data), 2, 10))
    assert [(c.lines, [r[0] for r in c.read_rejects]) for c in chunks] == [([1, 2], []), ([4], [3]), ([6], [])]


class _FailingReader(io.BytesIO):
    """A stream whose `fail_at`-th read (0-based) raises, as a damaged disk or gzip member does."""

    def __init__(self, data: bytes, fail_at: int | None):
        super().__init__(data)
        self.reads = 0
        self.fail_at = fail_at

    def read(self, size: int = -1) -> bytes:
        if self.reads == self.fail_at:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        self.reads += 1
        return super().read(size)


def _records(chunks) -> tuple[list, list]:
    """Every record (line, text) and every read reject, in order, however the chunks were cut."""
    records = [(n, t) for c in chunks for n, t in zip(c.lines, c.texts, strict=True)]
    return records, [r for c in chunks for r in c.read_rejects]


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(LINE, max_size=60),
    trailing_newline=st.booleans(),
    read_block=st.sampled_from([1, 3, 16, 200, 1 << 20]),
    block_bytes=st.sampled_from([1, 5, 40, 1000, 1 << 20]),
    max_record_bytes=st.sampled_from([3, 30, 250, 10_000]),
    fail_at=st.one_of(st.none(), st.integers(0, 40)),
)
def test_blocks_split_where_they_are_classified_give_the_records_of_the_whole_file(
    lines, trailing_newline, read_block, block_bytes, max_record_bytes, fail_at
):
    """Worker processes take a large file in blocks cut at newlines (line_blocks) and split each one
    themselves (block_chunks): together the same records, line numbers, over-long-line rejects and read
    error as _line_chunks reading the whole file, and no block holds more than its limits allow."""
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "READ_BLOCK", read_block)
        whole = list(reading._line_chunks("raw/x.geojsonl", _FailingReader(data, fail_at), 7, max_record_bytes))
        blocks = list(reading.line_blocks(_FailingReader(data, fail_at), block_bytes, max_record_bytes))
        pieces = [c for b in blocks for c in reading.block_chunks("raw/x.geojsonl", b, 7, max_record_bytes)]

    assert _records(pieces) == _records(whole)
    errors = [b.error for b in blocks if b.error is not None]
    assert errors == (
        []
        if not any(r[2] is Reason.FILE_UNREADABLE for c in whole for r in c.read_rejects)
        else ["Compressed file ended before the end-of-stream marker was reached"]
    )
    assert all(b.error is None for b in blocks[:-1])
    # Every block but the last ends a line; each holds at most a read block past `block_bytes` plus one
    # over-long line's kept prefix, whatever the file's lines.
    assert all(b.text.endswith(b"\n") for b in blocks[:-1])
    assert all(len(b.text) <= block_bytes + read_block + max_record_bytes + 1 for b in blocks)
    assert [b.first_line for b in blocks] == [
        1 + sum(x.text.count(b"\n") for x in blocks[:k]) for k in range(len(blocks))
    ]


def test_an_over_long_line_is_cut_to_what_rejecting_it_needs():
    data = b"a\n" + b"x" * 5000 + b"\nb\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "READ_BLOCK", 64)
        blocks = list(reading.line_blocks(io.BytesIO(data), 1 << 20, 100))
    assert [(b.text, b.first_line) for b in blocks] == [(b"a\n" + b"x" * 101 + b"\nb\n", 1)]
    (chunk,) = reading.block_chunks("raw/x.geojsonl", blocks[0], 10, 100)
    assert chunk.lines == [1, 3]
    assert [(r[0], r[1], r[2]) for r in chunk.read_rejects] == [(2, b"x" * 101, Reason.RECORD_TOO_LARGE)]
