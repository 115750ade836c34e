"""The spelling-varied batch really varies its spelling, and its bad values are ~1%, spread evenly.

Each variant is counted on the generator's output, parsed back the way a reader would, so a generator that
quietly fell back to one spelling fails here."""

from __future__ import annotations

import collections
import datetime as dt
import json
import re

import pytest

from benchmarks import generate_varied
from benchmarks.generate import PARTITION

RECORDS = 5_000
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> list[bytes]:
    path = generate_varied.generate(tmp_path_factory.mktemp("varied") / "v.geojsonl", RECORDS, seed=7, workers=1)
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def features(batch) -> list[dict]:
    return [json.loads(line) for line in batch]


def share(count: int) -> float:
    return count / RECORDS


def test_every_line_is_one_feature(batch, features):
    assert len(batch) == len(features) == RECORDS
    assert all(f["type"] == "Feature" for f in features)


def test_member_orders_vary(features):
    orders = collections.Counter(tuple(f) for f in features)
    properties_first = sum(n for order, n in orders.items() if order[0] == "properties")
    type_last = sum(n for order, n in orders.items() if order[-1] == "type")
    assert 0.42 < share(properties_first) < 0.58
    assert share(type_last) > 0.2
    assert len(orders) >= 5
    coordinates_first = sum(next(iter(f["geometry"])) == "coordinates" for f in features)
    assert 0.1 < share(coordinates_first) < 0.3
    property_orders = collections.Counter(tuple(f["properties"]) for f in features)
    assert len(property_orders) >= 20 and property_orders.most_common(1)[0][1] < 0.5 * RECORDS


def test_timestamps_carry_offsets_and_fractions(features):
    arrival = [str(f["properties"]["arrival_time"]) for f in features]
    spelled = [re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", a) for a in arrival]
    spelled = [m for m in spelled if m]
    suffixes = collections.Counter(m.group(2) for m in spelled)
    for suffix in ("Z", "+00:00", "+02:00", "-05:30"):
        assert share(suffixes[suffix]) > 0.04, suffix
    digits = collections.Counter(len(m.group(1)) - 1 for m in spelled if m.group(1))
    assert sorted(digits) == [1, 2, 3, 4, 5, 6] and min(digits.values()) > 0.03 * RECORDS
    intended = [f["properties"]["processing_date"] for f in features]
    datetimes = [p for p in intended if isinstance(p, str) and "T" in p]
    assert 0.15 < share(len(datetimes)) < 0.25


def test_crs_spellings(features):
    crs = collections.Counter(f["properties"].get("crs", "absent") for f in features)
    for value in ("EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:32633", "urn:ogc:def:crs:EPSG::32633", None):
        assert crs[value] > 0.01 * RECORDS, value
    assert 0.08 < share(crs["EPSG:32633"] + crs["urn:ogc:def:crs:EPSG::32633"]) < 0.12


def _coordinates_text(line: bytes) -> bytes:
    return line[line.index(b'"coordinates"') :]


def test_numbers_as_writers_spell_them(batch):
    def significant(token: bytes) -> int:
        mantissa = token.lstrip(b"-").split(b"e")[0].split(b"E")[0].replace(b".", b"").lstrip(b"0")
        return len(mantissa)

    seventeen = sum(any(significant(t) == 17 for t in NUMBER.findall(_coordinates_text(line))) for line in batch)
    exponent = sum(bool(re.search(rb"\d\.\d+e\+0\d", _coordinates_text(line))) for line in batch)
    integer_pairs = sum(bool(re.search(rb"\[\s*\d{6}\s*,\s*\d{7}\s*\]", line)) for line in batch)
    tiny = sum(b"e-05" in line or b"e-07" in line for line in batch)
    assert share(seventeen) > 0.3
    assert share(exponent) > 0.02
    assert integer_pairs > 0  # UTM records written with integer metres
    assert share(tiny) > 0.1


def test_data_carries_nested_listed_and_unicode_values(batch, features):
    data = [f["properties"]["data"] for f in features if isinstance(f["properties"].get("data"), dict)]
    assert sum(isinstance(d.get("soil"), dict) and isinstance(d["soil"]["samples"], list) for d in data) > 0.2 * RECORDS
    assert sum(isinstance(d.get("history"), list) for d in data) > 0.2 * RECORDS
    assert sum("Ø" in json.dumps(d, ensure_ascii=False) for d in data) > 0.05 * RECORDS
    escaped = sum(b"\\u" in line for line in batch)
    raw = sum(any(b > 127 for b in line) for line in batch)
    assert share(escaped) > 0.3 and share(raw) > 0.3


def test_whitespace_and_line_endings_vary(batch):
    compact = sum(b'"type":"' in line or b'"properties":{' in line for line in batch)
    spaced = sum(b'": ' in line for line in batch)
    padded = sum(b" : " in line for line in batch)
    crlf = sum(line.endswith(b"\r\n") for line in batch)
    assert share(compact) > 0.2 and share(spaced) > 0.3 and share(padded) > 0.1
    assert 0.03 < share(crlf) < 0.07


def _bad_value(props: dict) -> bool:
    """A value the data contract refuses: an id that is not a non-empty string free of '/', or a time or date
    that is not one."""
    fid = props.get("field_id")
    if not isinstance(fid, str) or not fid or "/" in fid:
        return True
    try:
        arrival = dt.datetime.fromisoformat(props["arrival_time"])
        intended = props["processing_date"]
        if not isinstance(intended, str) or not intended:
            return True
        (dt.datetime if "T" in intended else dt.date).fromisoformat(intended)
    except (TypeError, ValueError):
        return True
    return arrival.tzinfo is None


def test_bad_values_are_one_percent_one_in_every_hundred(features):
    bad = [i for i, f in enumerate(features) if _bad_value(f["properties"])]
    assert len(bad) == RECORDS // 100
    assert [i // 100 for i in bad] == list(range(RECORDS // 100))  # exactly one in each run of a hundred
    kinds = collections.Counter()
    for i in bad:
        props = features[i]["properties"]
        for key in ("field_id", "arrival_time", "processing_date"):
            if _bad_value({**GOOD, key: props.get(key)}):
                kinds[key, type(props.get(key)).__name__] += 1
    assert {key for key, _ in kinds} == {"field_id", "arrival_time", "processing_date"}
    assert {kind for _, kind in kinds} == {"str", "int"}


GOOD = {"field_id": "F-1", "arrival_time": "2025-03-03T10:00:00Z", "processing_date": "2025-03-03"}


def test_good_records_are_about_ten_percent_late_and_never_early(features):
    day = dt.datetime.combine(PARTITION, dt.time(), dt.UTC)
    late = early = 0
    for f in features:
        props = f["properties"]
        if _bad_value(props):
            continue
        arrival = dt.datetime.fromisoformat(props["arrival_time"]).astimezone(dt.UTC)
        intended_text = props["processing_date"]
        if "T" in intended_text:
            intended = dt.datetime.fromisoformat(intended_text).astimezone(dt.UTC).date()
        else:
            intended = dt.date.fromisoformat(intended_text)
        opens = dt.datetime.combine(intended, dt.time(), dt.UTC)
        early += arrival < opens
        late += intended < PARTITION or arrival >= day + dt.timedelta(days=1)
    assert early == 0
    assert 0.08 < share(late) < 0.12


def test_blocks_are_the_same_whatever_the_number_of_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_varied, "BLOCK", 1_000)
    one = generate_varied.generate(tmp_path / "one.geojsonl", 2_500, seed=3, workers=1)
    two = generate_varied.generate(tmp_path / "two.geojsonl", 2_500, seed=3, workers=2)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes().count(b"\n") == 2_500
