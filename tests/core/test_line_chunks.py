"""Line-delimited files into chunks: whatever the read-block size, the same records with the same line
numbers, over-long lines as rejects in place, and chunks that are full except the last (an over-long line
found at a read block's end used to be added past a full chunk)."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geospatial_pipeline.core.reading as reading
from geospatial_pipeline.core.records import Reason

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
