"""Bad input: whatever lands in raw/{D}/, the run finishes, every record ends in exactly one outcome,
every rejection carries reason codes, and nothing is written outside its folder.

The property test drives the whole partition run (`run_partition` on a local lake) with generated
batches: random JSON, truncated, over-long and binary lines, wrong types, huge/NaN coordinates, unclosed
rings, 3D and GeometryCollection geometries, antimeridian crossings, odd CRS strings, many timestamp
formats, hostile field ids, FeatureCollections, gzip (good and corrupt) and unsupported files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import re
import tempfile
import tracemalloc
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from reliability_support import run

from geospatial_pipeline.core.reading import READ_BLOCK, iter_chunks
from geospatial_pipeline.core.reasons import Reason
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LOCAL_TMP_DIR, LocalStore
from geospatial_pipeline.lake.publish import OUTCOMES

PARTITION = "2025-01-02"
REASON_CODES = {r.value for r in Reason}
LIMITS = {"max_record_bytes": 4_000, "max_vertices": 64, "max_collection_bytes": 20_000}


# --- generators ----------------------------------------------------------------------------------------

HOSTILE_IDS = [
    "../escape",
    "..",
    ".",
    "a/b",
    "a\\b",
    "nul\x00byte",
    "line\nbreak",
    "tab\tid",
    "\u202eevil.exe",
    "\u2028",
    "CON",
    " leading",
    "trailing ",
    "x" * 129,
    "é" * 101,
    "😀" * 50,
    "%2e%2e%2f",
    LOCAL_TMP_DIR,
    ".tmp-field",
    "_batches",
    "\ud800",
    "",
]
FIELD_IDS = st.one_of(
    st.sampled_from(["F-1", "F-2", "F-3", "ÄÖÜ-4"]),  # a small pool, so copies collide and dedupe
    st.sampled_from(HOSTILE_IDS),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)

TIME_FORMATS = [
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%S+00:00",
    "%Y-%m-%dT%H:%M:%S+02:00",
    "%Y-%m-%dT%H:%M:%S-11:30",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y%m%dT%H%M%SZ",
    "%Y-%m-%dt%H:%M:%Sz",
    "%d/%m/%Y %H:%M",
    "%a, %d %b %Y %H:%M:%S GMT",
]
ODD_TIMES = [
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "2025-02-30T00:00:00Z",
    "2025-W01-4T05:00",
    "1735776000",
    "",
    "  2025-01-02T05:00:00Z",
    "2025-01-02T24:00:00Z",
    "2025-01-02T05:00:00.123456789Z",
]
INSTANTS = st.datetimes(min_value=dt.datetime(2024, 12, 30), max_value=dt.datetime(2025, 1, 4))
TIMESTAMPS = st.one_of(
    st.builds(lambda t, f: t.strftime(f), INSTANTS, st.sampled_from(TIME_FORMATS)),
    st.sampled_from(ODD_TIMES),
    st.integers(),
    st.floats(),
    st.none(),
    st.text(max_size=20),
)
DATES = st.one_of(
    st.sampled_from(["2025-01-01", "2025-01-02", "2025-01-02", "2025-01-03", "2024-12-31", "9999-12-31"]),
    TIMESTAMPS,
)
CRS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "EPSG:4326",
            "urn:ogc:def:crs:OGC:1.3:CRS84",
            "epsg:4326",
            "EPSG:3857",
            "EPSG:32633",
            "EPSG:99999",
            "+proj=lol",
            "",
            "ESRI:102100",
            "x" * 600,
        ]
    ),
    st.integers(),
    st.text(max_size=10),
)


def _square(lon: float, lat: float, size: float) -> list:
    return [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]


COORD = st.floats(allow_nan=True, allow_infinity=True)
GEOMETRIES = st.one_of(
    st.builds(
        lambda lon, lat, size: {"type": "Polygon", "coordinates": _square(lon, lat, size)},
        st.floats(-20, 40),
        st.floats(36, 70),
        st.floats(0.0005, 0.05),
    ),
    st.just(
        {"type": "Polygon", "coordinates": [[[179.9, 50], [-179.9, 50], [-179.9, 50.1], [179.9, 50.1], [179.9, 50]]]}
    ),
    st.just({"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50.01]]]}),  # unclosed
    st.just({"type": "Polygon", "coordinates": [[[10, 50, 1], [10.01, 50, 1], [10.01, 50.01, 1], [10, 50, 1]]]}),
    st.just({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [10, 50]}]}),
    st.just({"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50.01], [10.01, 50], [10, 50.01], [10, 50]]]}),
    st.just({"type": "Polygon", "coordinates": []}),
    st.just({"type": "MultiPolygon", "coordinates": [_square(10, 50, 0.01), _square(11, 50, 0.01)]}),
    st.just({"type": "Polygon", "coordinates": _square(1_113_000, 6_446_000, 500)}),  # metres (EPSG:3857)
    st.just({"type": "Polygon", "coordinates": _square(500_000, 5_500_000, 100)}),  # metres (UTM 33N)
    st.just({"type": "Polygon", "coordinates": [[[10 + i / 1e4, 50] for i in range(100)] + [[10, 50.01], [10, 50]]]}),
    st.builds(lambda a, b: {"type": "Polygon", "coordinates": [[[a, b], [a, 50], [10, 50], [a, b]]]}, COORD, COORD),
    st.builds(lambda c: {"type": "Point", "coordinates": c}, st.lists(COORD, max_size=3)),
    st.just({"type": "Polygon", "coordinates": "nonsense"}),
    st.just({"type": "Polygon", "coordinates": [[[1e308, 50], [-1e308, 50], [10, 51], [1e308, 50]]]}),
    st.none(),
    st.integers(),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def features(draw) -> dict:
    props = {
        "field_id": draw(FIELD_IDS),
        "processing_date": draw(DATES),
        "arrival_time": draw(TIMESTAMPS),
    }
    if draw(st.booleans()):
        props["crs"] = draw(CRS)
    if draw(st.booleans()):
        props["data"] = draw(st.one_of(st.dictionaries(st.text(max_size=5), JSON, max_size=3), JSON))
    for name in draw(st.sets(st.sampled_from(sorted(props)), max_size=1)):
        del props[name]  # a required property missing
    feature = {"type": draw(st.sampled_from(["Feature", "Feature", "Feature", "feature", "Point"]))}
    feature["properties"] = props if draw(st.integers(0, 9)) else draw(JSON)
    feature["geometry"] = draw(GEOMETRIES)
    return feature


@st.composite
def good_features(draw) -> dict:
    """Well-formed records around the partition: on time, late (for the day before, or after the window),
    superseded copies (a small id pool), in lon/lat or metres with their CRS."""
    intended = draw(st.sampled_from([dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 2)]))
    start = dt.datetime.combine(intended, dt.time(), dt.UTC)
    arrival = start + dt.timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)))
    lon, lat, size = draw(st.floats(-20, 40)), draw(st.floats(36, 70)), draw(st.floats(0.0005, 0.05))
    props = {
        "field_id": draw(st.sampled_from(["F-1", "F-2", "F-3", "ÄÖÜ-4", "😀", "x" * 128])),
        "processing_date": intended.isoformat(),
        "arrival_time": arrival.strftime(draw(st.sampled_from(TIME_FORMATS[:5]))),
        "data": draw(st.dictionaries(st.text(max_size=5), JSON, max_size=3)),
    }
    geometry = {"type": "Polygon", "coordinates": _square(lon, lat, size)}
    if draw(st.booleans()):
        props["crs"] = "EPSG:3857"
        x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
        geometry = {"type": "Polygon", "coordinates": _square(x, y, size * 50_000)}
    return {"type": "Feature", "properties": props, "geometry": geometry}


def encode(value, ascii_only: bool) -> bytes:
    text = json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8, on purpose


@st.composite
def lines(draw) -> bytes:
    kinds = ["good"] * 8 + ["feature"] * 4 + ["json", "truncated", "oversized", "binary", "blank", "deep"]
    kind = draw(st.sampled_from(kinds))
    ascii_only = draw(st.booleans())
    if kind == "good":
        return encode(draw(good_features()), ascii_only)
    if kind == "feature":
        return encode(draw(features()), ascii_only)
    if kind == "json":
        return encode(draw(JSON), ascii_only)
    if kind == "truncated":
        text = encode(draw(features()), ascii_only)
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "oversized":
        feature = draw(features())
        feature["padding"] = "p" * (LIMITS["max_record_bytes"] + draw(st.integers(1, 5_000)))
        return encode(feature, True)
    if kind == "binary":
        return draw(st.binary(max_size=64)).replace(b"\n", b" ")
    if kind == "deep":
        depth = draw(st.sampled_from([300, 900, 1100]))
        return b'{"type":"Feature","properties":{"field_id":"D"},"geometry":' + b"[" * depth + b"]" * depth + b"}"
    return draw(st.sampled_from([b"", b"   ", b"\r", b"\x1e"]))


def _counted(body: bytes) -> int:
    """Records in a line-delimited body: every non-blank line, and every over-long one."""
    limit = LIMITS["max_record_bytes"]
    return sum(1 for part in body.split(b"\n") if len(part) > limit or part.strip(b"\r\x1e \t"))


@st.composite
def raw_files(draw, index: int) -> tuple[str, bytes, int]:
    """(file name, bytes, records it holds)."""
    kind = draw(st.sampled_from(["lines", "lines", "lines_gz", "collection", "collection_gz", "bad_gz", "unsupported"]))
    if kind in ("lines", "lines_gz"):
        body = b"\n".join(draw(st.lists(lines(), max_size=12)))
        if draw(st.booleans()):
            body += b"\n"
        suffix = draw(st.sampled_from([".geojsonl", ".ndjson", ".jsonl", ".geojsonseq"]))
        if kind == "lines_gz":
            return f"batch{index}{suffix}.gz", gzip.compress(body, mtime=0), _counted(body)
        return f"batch{index}{suffix}", body, _counted(body)
    if kind in ("collection", "collection_gz"):
        feats = draw(st.lists(st.one_of(good_features(), features()), max_size=8))
        doc: dict = {"type": "FeatureCollection", "features": feats}
        if draw(st.booleans()):
            doc["crs"] = {
                "type": "name",
                "properties": {"name": draw(st.sampled_from(["EPSG:4326", "EPSG:3857", "nope"]))},
            }
        body = encode(doc, draw(st.booleans()))
        count = len(feats) if len(body) <= LIMITS["max_collection_bytes"] else 1
        if draw(st.integers(0, 4)) == 0:  # cut off: the whole file is one malformed record
            body, count = body[: max(1, len(body) // 2)], 1
        if kind == "collection_gz":
            return f"collection{index}.geojson.gz", gzip.compress(body, mtime=0), count
        return f"collection{index}.geojson", body, count
    if kind == "bad_gz":
        return f"broken{index}.geojsonl.gz", draw(st.binary(min_size=1, max_size=40)).replace(b"\x1f\x8b", b""), 1
    return f"notes{index}.csv", b"a,b\n1,2\n", 1


@st.composite
def batches(draw) -> list[tuple[str, bytes, int]]:
    files = [draw(raw_files(i)) for i in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 5)) == 0:  # a landed name no lake key can have: the file is one unsupported record
        name, body, _ = files[0]
        files[0] = (draw(st.sampled_from(["back\\slash-", "ctrl\x01-", "tab\t", ".", "_"])) + name, body, 1)
    return files


# --- the property --------------------------------------------------------------------------------------

ALLOWED_KEYS = [
    rf"raw/{PARTITION}/[^/]+",
    rf"fields/date={PARTITION}/fields\.parquet",
    rf"rejected/{PARTITION}/rejected\.geojsonl",
    rf"manifests/{PARTITION}\.json",
    r"late_data/2025-01-0[12]/[^/]+\.(geojson|txt)",
    rf"late_data/_batches/2025-01-0[12]/{PARTITION}\.parquet",
]


def publish_batch(root: Path, batch, settings_obj) -> tuple[LocalStore, dict]:
    lake = root / "lake"
    (lake / "raw" / PARTITION).mkdir(parents=True)
    for name, body, _ in batch:
        (lake / "raw" / PARTITION / name).write_bytes(body)
    store = LocalStore(lake)
    report = run(store, PARTITION, settings_obj)
    return store, report.counts


def check_accounting(root: Path, store: LocalStore, counts: dict, batch) -> None:
    expected = sum(n for _, _, n in batch)
    assert counts["input_records"] == expected
    assert sum(counts[k] for k in OUTCOMES) == expected
    assert min(counts[k] for k in OUTCOMES) >= 0

    # Every quarantined record is one line with at least one known reason code.
    rejected = store.get_bytes(keys.rejected_key(PARTITION)).splitlines()
    assert len(rejected) == counts["rejected"]
    sources = {f"raw/{PARTITION}/{name}" for name, _, _ in batch}
    for line in rejected:
        props = orjson.loads(line)["properties"]
        assert props["reason_codes"] and set(props["reason_codes"]) <= REASON_CODES
        assert props["source_key"] in sources

    # The GeoParquet holds what the counts say, one row per (date, field), ids that were in the input.
    table = pq.read_table(store.open(keys.fields_key(PARTITION)))
    assert table.num_rows == counts["published_rows"] <= counts["on_time"] + counts["late"]
    pairs = list(zip(table["processing_date"].to_pylist(), table["field_id"].to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs))

    manifest = orjson.loads(store.get_bytes(keys.manifest_key(PARTITION)))
    assert manifest["counts"] == counts
    late_objects = [info.key for info in store.list("late_data/") if not info.key.startswith("late_data/_batches/")]
    assert len(late_objects) == 2 * counts["late"] == manifest["outputs"]["late_objects"]

    # Nothing outside its folder: every file on disk, hidden ones included, matches the contract.
    assert sorted(os.listdir(root)) == ["lake"]
    for dirpath, _, filenames in os.walk(root / "lake"):
        for name in filenames:
            rel = Path(dirpath, name).relative_to(root / "lake").as_posix()
            assert any(re.fullmatch(p, rel, re.DOTALL) for p in ALLOWED_KEYS), f"unexpected object {rel!r}"


@settings(
    max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(batch=batches(), chunk_records=st.sampled_from([1, 3, 50_000]))
def test_any_batch_is_fully_accounted_for_and_stays_in_its_folders(batch, chunk_records, settings_for):
    base = settings_for(**LIMITS)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        store, counts = publish_batch(Path(a), batch, base.model_copy(update={"chunk_records": chunk_records}))
        check_accounting(Path(a), store, counts, batch)
        for outcome in OUTCOMES:  # shown by --hypothesis-show-statistics: the batches reach every outcome
            event(f"{outcome} > 0" if counts[outcome] else f"no {outcome}")
        # The outcome does not depend on how the batch was cut into chunks (row groups may differ).
        other, _ = publish_batch(Path(b), batch, base.model_copy(update={"chunk_records": 2}))
        assert content(store) == content(other)


def content(store: LocalStore) -> dict:
    """The lake's data: Parquet as rows and `geo` metadata, manifests as counts, the rest as bytes."""
    out: dict = {}
    for info in store.list(""):
        if info.key.startswith("raw/"):
            continue  # the input, which may hold names no output key can have
        body = store.get_bytes(info.key)
        if info.key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(body))
            out[info.key] = (table.to_pylist(), table.schema.metadata[b"geo"])
        elif info.key.startswith("manifests/"):
            manifest = orjson.loads(body)
            out[info.key] = (manifest["counts"], manifest["reasons"], manifest["late_by_intended_date"])
        else:
            out[info.key] = body
    return out


# --- adversarial records, one at a time ---------------------------------------------------------------

BASE = {"field_id": "A-1", "arrival_time": "2025-01-02T05:00:00Z", "processing_date": PARTITION}
SQUARE = {"type": "Polygon", "coordinates": _square(10, 50, 0.01)}


def _feature(props=None, geometry=SQUARE, **extra) -> bytes:
    return json.dumps(
        {"type": "Feature", "properties": {**BASE, **(props or {})}, "geometry": geometry, **extra}
    ).encode()


def _nested_geometry(depth: int) -> bytes:
    props = json.dumps(BASE).encode()
    return b'{"type":"Feature","properties":' + props + b',"geometry":' + b"[" * depth + b"]" * depth + b"}"


CASES = {
    "valid": (_feature(), None),
    "not json": (b"{nope", Reason.MALFORMED_JSON),
    "truncated": (_feature()[:40], Reason.MALFORMED_JSON),
    "array": (b"[1, 2]", Reason.NOT_A_FEATURE),
    "invalid utf-8": (b'{"type":"Feature","properties":{"field_id":"\xff\xfe"}}', Reason.MALFORMED_JSON),
    "id is a number": (_feature({"field_id": 17}), Reason.INVALID_FIELD_ID),
    "id climbs out": (_feature({"field_id": "../../etc"}), Reason.INVALID_FIELD_ID),
    "id with NUL": (_feature({"field_id": "a\x00b"}), Reason.INVALID_FIELD_ID),
    "id lone surrogate": (
        b'{"type":"Feature","properties":{"field_id":"\\ud800","arrival_time":"2025-01-02T05:00:00Z",'
        b'"processing_date":"2025-01-02"},"geometry":null}',
        Reason.INVALID_FIELD_ID,
    ),
    "arrival as a number": (_feature({"arrival_time": 1735794000}), Reason.INVALID_ARRIVAL_TIME),
    "arrival overflows UTC": (_feature({"arrival_time": "9999-12-31T23:59:59-01:00"}), Reason.INVALID_ARRIVAL_TIME),
    "arrival underflows UTC": (_feature({"arrival_time": "0001-01-01T00:00:00+01:00"}), Reason.INVALID_ARRIVAL_TIME),
    "date overflows UTC": (_feature({"processing_date": "9999-12-31T23:59:59-01:00"}), Reason.INVALID_PROCESSING_DATE),
    "date is not a day": (_feature({"processing_date": "2025-02-30"}), Reason.INVALID_PROCESSING_DATE),
    "data nested 300 deep": (_feature({"data": json.loads('{"a":' * 300 + "1" + "}" * 300)}), Reason.DATA_NOT_OBJECT),
    "data lone surrogate": (_feature({"data": {"x": "\ud800"}}), Reason.DATA_NOT_OBJECT),
    "data NaN": (_feature({"data": {"x": float("nan")}}), Reason.DATA_NOT_OBJECT),
    "data 1e400": (_feature({"data": {"x": 1.5}}).replace(b"1.5", b"1e400"), Reason.DATA_NOT_OBJECT),
    "data 1e300 is fine": (_feature({"data": {"x": 1.5}}).replace(b"1.5", b"1e300"), None),
    "geometry nested 300 deep": (_feature(geometry=json.loads("[" * 300 + "]" * 300)), Reason.GEOMETRY_UNPARSEABLE),
    "geometry nested 1000 deep": (_nested_geometry(1000), Reason.GEOMETRY_UNPARSEABLE),
    "geometry nested 1100 deep": (_nested_geometry(1100), Reason.MALFORMED_JSON),
    "NaN coordinate": (
        _feature(geometry={"type": "Polygon", "coordinates": [[[float("nan"), 50], [10, 51], [11, 50]]]}),
        Reason.GEOMETRY_NON_FINITE,
    ),
    "1e400 coordinate": (_feature().replace(b"[10, 50]", b"[1e400, 50]", 1), Reason.GEOMETRY_NON_FINITE),
    "unclosed ring": (
        _feature(geometry={"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 51]]]}),
        Reason.GEOMETRY_UNPARSEABLE,
    ),
    "3D": (
        _feature(geometry={"type": "Polygon", "coordinates": [[[10, 50, 1], [11, 50, 1], [11, 51, 1], [10, 50, 1]]]}),
        Reason.GEOMETRY_NOT_2D,
    ),
    "GeometryCollection": (
        _feature(geometry={"type": "GeometryCollection", "geometries": [SQUARE]}),
        Reason.GEOMETRY_TYPE_NOT_ALLOWED,
    ),
    "bow tie": (
        _feature(geometry={"type": "Polygon", "coordinates": [[[10, 50], [11, 51], [11, 50], [10, 51], [10, 50]]]}),
        Reason.GEOMETRY_INVALID,
    ),
    "too many vertices": (
        _feature(
            geometry={
                "type": "Polygon",
                "coordinates": [[[10 + i / 1e4, 50] for i in range(100)] + [[10, 50.01], [10, 50]]],
            }
        ),
        Reason.TOO_MANY_VERTICES,
    ),
    "no geometry": (_feature(geometry=None), Reason.GEOMETRY_MISSING),
    "unknown CRS": (_feature({"crs": "+proj=lol"}), Reason.CRS_UNKNOWN),
    "CRS is an object": (_feature({"crs": {"type": "name"}}), Reason.INVALID_CRS_PROPERTY),
    "metres labelled degrees": (
        _feature(geometry={"type": "Polygon", "coordinates": _square(500_000, 5_500_000, 100)}),
        Reason.OUTSIDE_CRS_AREA_OF_USE,
    ),
    "antimeridian, outside the region": (
        _feature(
            geometry={"type": "Polygon", "coordinates": [[[179.9, 50], [-179.9, 50], [-179.9, 50.1], [179.9, 50]]]}
        ),
        Reason.OUTSIDE_BOUNDS,
    ),
    "future partition": (
        _feature({"processing_date": "2025-01-05", "arrival_time": "2025-01-05T01:00:00Z"}),
        Reason.FUTURE_PARTITION,
    ),
    "oversized": (_feature(padding="p" * 5_000), Reason.RECORD_TOO_LARGE),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_adversarial_record_ends_in_one_outcome_with_its_reason(name, tmp_path, settings_for):
    line, reason = CASES[name]
    store, counts = publish_batch(tmp_path, [("one.geojsonl", line + b"\n", 1)], settings_for(**LIMITS))
    check_accounting(tmp_path, store, counts, [("one.geojsonl", line, 1)])
    rejected = [orjson.loads(x)["properties"] for x in store.get_bytes(keys.rejected_key(PARTITION)).splitlines()]
    if reason is None:
        assert counts["on_time"] == 1 and rejected == []
    else:
        assert len(rejected) == 1 and reason.value in rejected[0]["reason_codes"], rejected


def test_hostile_landing_file_names_are_quarantined_not_fatal(tmp_path, settings_for):
    names = ["back\\slash.geojsonl", "ctrl\x01.geojsonl", ".hidden.geojsonl", "_private.geojsonl", "readme.txt"]
    batch = [(name, _feature() + b"\n", 1) for name in names] + [("good.geojsonl", _feature() + b"\n", 1)]
    store, counts = publish_batch(tmp_path, batch, settings_for(**LIMITS))
    assert counts["input_records"] == len(names) + 1 and counts["on_time"] == 1
    reasons = [orjson.loads(x)["properties"] for x in store.get_bytes(keys.rejected_key(PARTITION)).splitlines()]
    assert sorted(r["source_key"].rsplit("/", 1)[1] for r in reasons) == sorted(names)
    assert {c for r in reasons for c in r["reason_codes"]} == {Reason.UNSUPPORTED_FILE.value}


# --- limits --------------------------------------------------------------------------------------------


class _Endless(io.RawIOBase):
    """`size` bytes of one line with no newline, made up as they are read (nothing on disk)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def test_an_over_long_line_is_quarantined_while_streaming_not_buffered_whole():
    size = 64 << 20
    tracemalloc.start()
    try:
        chunks = list(
            iter_chunks(
                "raw/2025-01-02/huge.geojsonl",
                io.BufferedReader(_Endless(size)),
                chunk_records=10,
                max_record_bytes=1_000_000,
                max_collection_bytes=1_000_000,
            )
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [len(c) for c in chunks] == [1]
    line, prefix, reason, message = chunks[0].read_rejects[0]
    assert (line, reason, len(prefix)) == (1, Reason.RECORD_TOO_LARGE, 1024)
    assert "max_record_bytes=1000000" in message
    assert peak < 4 * READ_BLOCK < size // 2, f"peak {peak} bytes: the line was buffered"


def test_an_over_long_line_among_good_ones_costs_only_itself(tmp_path, settings_for):
    body = _feature({"field_id": "A-1"}) + b"\n" + b"y" * 300_000 + b"\n" + _feature({"field_id": "A-2"}) + b"\n"
    store, counts = publish_batch(tmp_path, [("mixed.geojsonl", body, 3)], settings_for(**LIMITS))
    assert (counts["on_time"], counts["rejected"]) == (2, 1)
    (line,) = store.get_bytes(keys.rejected_key(PARTITION)).splitlines()
    props = orjson.loads(line)["properties"]
    assert props["reason_codes"] == ["record_too_large"] and props["source_line"] == 2
    assert len(props["raw"]) <= 1024  # only a prefix of the record is kept in quarantine


def test_a_feature_collection_over_its_limit_is_quarantined_as_one_record(tmp_path, settings_for):
    feature = json.loads(_feature())
    doc = json.dumps({"type": "FeatureCollection", "features": [feature] * 200}).encode()
    assert len(doc) > LIMITS["max_collection_bytes"]
    store, counts = publish_batch(tmp_path, [("big.geojson", doc, 1)], settings_for(**LIMITS))
    assert counts == counts | {"input_records": 1, "rejected": 1, "on_time": 0}
    (line,) = store.get_bytes(keys.rejected_key(PARTITION)).splitlines()
    props = orjson.loads(line)["properties"]
    assert props["reason_codes"] == ["record_too_large"] and "max_collection_bytes" in props["reasons"][0]["message"]


def test_records_are_read_in_bounded_chunks(settings_for):
    body = b"\n".join(_feature({"field_id": f"C-{i}"}) for i in range(25))
    chunks = list(
        iter_chunks(
            "raw/x.geojsonl", io.BytesIO(body), chunk_records=7, max_record_bytes=10_000, max_collection_bytes=10_000
        )
    )
    assert [len(c) for c in chunks] == [7, 7, 7, 4]


# --- compressed input ---------------------------------------------------------------------------------


def test_gzip_lines_are_read(tmp_path, settings_for):
    body = b"\n".join(_feature({"field_id": f"G-{i}"}) for i in range(5)) + b"\n"
    store, counts = publish_batch(tmp_path, [("b.geojsonl.gz", gzip.compress(body), 5)], settings_for(**LIMITS))
    assert (counts["input_records"], counts["on_time"], counts["rejected"]) == (5, 5, 0)


def test_a_truncated_gzip_keeps_the_blocks_before_the_damage_and_quarantines_the_rest(tmp_path, settings_for):
    """Lines are salvaged a read block (4 MiB decompressed) at a time; the unreadable rest of the file is one
    `file_unreadable` record naming the first line it could not read."""
    pad = "q" * 900
    body = b"\n".join(_feature({"field_id": f"T-{i}", "data": {"pad": pad}}) for i in range(12_000)) + b"\n"
    assert len(body) > 2 * READ_BLOCK
    packed = gzip.compress(body)
    cut = packed[: len(packed) * 3 // 4]
    store, counts = publish_batch(tmp_path, [("t.geojsonl.gz", cut, 0)], settings_for(**LIMITS))
    rejected = [orjson.loads(x)["properties"] for x in store.get_bytes(keys.rejected_key(PARTITION)).splitlines()]
    assert [r["reason_codes"] for r in rejected] == [["file_unreadable"]]
    assert 0 < counts["on_time"] < 12_000
    assert counts["input_records"] == counts["on_time"] + 1
    assert rejected[0]["source_line"] == counts["on_time"] + 1  # the first line that could not be read


@pytest.mark.parametrize(
    "name, body",
    [
        ("not-gzip.geojsonl.gz", b"plain text, not gzip\n"),
        ("garbage.geojson.gz", b"\x1f\x8b\x08\x00garbage"),
        ("empty.ndjson.gz", b""),
    ],
)
def test_a_corrupt_gzip_is_quarantined_not_fatal(name, body, tmp_path, settings_for):
    batch = [(name, body, 1), ("good.geojsonl", _feature() + b"\n", 1)]
    store, counts = publish_batch(tmp_path, batch, settings_for(**LIMITS))
    rejected = [orjson.loads(x)["properties"] for x in store.get_bytes(keys.rejected_key(PARTITION)).splitlines()]
    if name.startswith("empty"):  # an empty gzip stream is an empty file: no records, nothing to reject
        assert (counts["input_records"], rejected) == (1, [])
        return
    assert counts["on_time"] == 1 and counts["rejected"] == 1
    assert rejected[0]["reason_codes"] == ["file_unreadable"] and rejected[0]["source_key"].endswith(name)
