"""core/schema.py: the published columns, and texts turned into the published string type without
losing a value when they pass what one 32-bit-offset array holds."""

from __future__ import annotations

import pyarrow as pa

from geospatial_pipeline.core import schema


def test_value_offsets_of_a_sliced_array():
    for kind in (pa.string(), pa.large_binary()):
        values = pa.array(["a", "bcd", "", "ef"], kind).slice(1, 2)
        offsets = schema.value_offsets(values)
        assert (offsets[1:] - offsets[:-1]).tolist() == [3, 0]


def test_texts_are_split_into_chunks_where_one_array_would_overflow(monkeypatch):
    monkeypatch.setattr(schema, "_MAX_ARRAY_BYTES", 5)
    texts = pa.array([b"abc", b"de", b"f", b"", b"ghijklm", b"n"], pa.large_binary())
    column = schema.utf8_column(texts)
    assert column.type == pa.string()
    assert column.to_pylist() == ["abc", "de", "f", "", "ghijklm", "n"]
    assert [len(chunk) for chunk in column.chunks] == [2, 2, 1, 1]  # a value longer than the limit goes alone
    assert schema.utf8_column(pa.array([], pa.large_binary())).to_pylist() == []


def test_late_rows_carry_the_published_columns_and_their_geojson():
    assert schema.LATE_SCHEMA.names == [*schema.FIELD_SCHEMA.names, "geometry_geojson"]
    assert set(schema.FEW_VALUES) <= set(schema.FIELD_SCHEMA.names)
