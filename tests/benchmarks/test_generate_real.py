"""The real-shaped batch: every parcel's geometry text byte for byte, unique ids, about 10% late."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json

import pytest

from benchmarks import generate_real
from benchmarks.generate import PARTITION

PARCELS, WHY = generate_real.parcels_file()
needs_parcels = pytest.mark.skipif(PARCELS is None, reason=f"real parcels absent: {WHY}")
RECORDS = 4_000  # more than two passes over the 1,500 parcels


def members(text: str) -> dict[str, str]:
    """The text of each top-level member's value of a JSON object, by a character scan of its own."""
    spans: dict[str, str] = {}
    depth, in_string, escaped = 0, False, False
    string_start = value_start = 0
    key = None
    for at, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if depth == 1 and key is None:
                    key = json.loads(text[string_start : at + 1])
        elif ch == '"':
            in_string, string_start = True, at
        elif ch == ":" and depth == 1 and key is not None and not value_start:
            value_start = at + 1
        elif ch in "{[":
            depth += 1
        elif ch in "}]" or (ch == "," and depth == 1):
            depth -= ch != ","
            if depth == (ch == ",") and key is not None:  # a member ends: at a top-level comma or the last brace
                spans[key] = text[value_start:at].strip()
                key, value_start = None, 0
    return spans


def test_member_scan_reads_nested_text():
    line = '{"a": {"x": "},"}, "b":[1, [2]] ,"c":"q\\"}"}'
    assert members(line) == {"a": '{"x": "},"}', "b": "[1, [2]]", "c": '"q\\"}"'}


@pytest.fixture(scope="module")
def parcels() -> list[str]:
    with gzip.open(PARCELS, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> list[str]:
    path = generate_real.generate(tmp_path_factory.mktemp("real") / "r.geojsonl", RECORDS, seed=5)
    return path.read_text(encoding="utf-8").splitlines()


@needs_parcels
def test_each_parcel_keeps_its_geometry_crs_and_data_text(parcels, batch):
    assert len(batch) == RECORDS
    for n, line in enumerate(batch):
        source = members(parcels[n % len(parcels)])
        record = members(line)
        assert list(record) == list(source)  # member order as published
        assert record["geometry"] == source["geometry"], n
        published, written = members(source["properties"]), members(record["properties"])
        assert list(written) == list(published)
        for key in set(published) - set(generate_real.HOLES):  # crs, data: as published
            assert written[key] == published[key], (n, key)


@needs_parcels
def test_ids_are_unique_and_name_their_parcel(parcels, batch):
    ids = [json.loads(line)["properties"]["field_id"] for line in batch]
    assert len(set(ids)) == RECORDS
    originals = [json.loads(p)["properties"]["field_id"] for p in parcels]
    assert ids[:3] == [f"{originals[0]}-0", f"{originals[1]}-0", f"{originals[2]}-0"]
    assert ids[len(parcels)] == f"{originals[0]}-1"


@needs_parcels
def test_records_belong_to_the_partition_about_ten_percent_late(batch):
    day = dt.datetime.combine(PARTITION, dt.time(), dt.UTC)
    kinds = collections.Counter()
    for line in batch:
        props = json.loads(line)["properties"]
        arrival = dt.datetime.fromisoformat(props["arrival_time"])
        intended = dt.date.fromisoformat(props["processing_date"])
        assert intended in (PARTITION, PARTITION - dt.timedelta(days=1))
        assert day <= arrival < day + dt.timedelta(days=2)
        if intended < PARTITION:
            kinds["meant for the day before"] += 1
        elif arrival >= day + dt.timedelta(days=1):
            kinds["after the window"] += 1
    late = sum(kinds.values())
    assert 0.08 < late / RECORDS < 0.12
    assert min(kinds.values()) > 0.03 * RECORDS and len(kinds) == 2


def test_missing_parcels_are_named_not_raised(tmp_path):
    parcels, why = generate_real.parcels_file(tmp_path / "absent.geojsonl.gz")
    assert parcels is None and "absent.geojsonl.gz does not exist" in why
    with pytest.raises(FileNotFoundError, match="real parcels: .*absent.geojsonl.gz does not exist"):
        generate_real.generate(tmp_path / "r.geojsonl", 10, parcels=tmp_path / "absent.geojsonl.gz")
    assert not (tmp_path / "r.geojsonl").exists()
