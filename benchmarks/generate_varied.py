"""A seeded batch of the default batch's nature, spelled the many ways real deliveries spell records.

Same kind of fields as `generate.py` (star-shaped polygons of 20-60 vertices in Central Europe, about 10%
late, 2% invalid, 10% in UTM 33N, 1% re-deliveries), plus some MultiPolygons and holes, written through a
serializer of its own so that no record comes out spelled like the default batch's:

- member order varies: half the records carry `properties` before `geometry`, some put `type` last, some
  geometries give `coordinates` before `type`, properties come in shuffled orders;
- `arrival_time` with `Z`, `+00:00` or offsets such as `+02:00`/`-05:30`, 0-6 fractional digits; some
  `processing_date` values are full datetimes; `crs` is absent, null or explicit (`EPSG:4326`,
  `urn:ogc:def:crs:OGC:1.3:CRS84`; UTM 33N as `EPSG:32633` or its URN);
- numbers as `repr` writes them (up to 17 significant digits), rounded, forced to 17 digits, in exponent
  form, or (UTM) as integers; tiny values in `data` come out as `1e-05`;
- `data` carries extra keys: nested objects, lists, unicode (raw UTF-8 or `\\u` escapes);
- separators with and without spaces, padded brackets, trailing blanks, CRLF on some lines;
- about 1% bad timestamps and ids (impossible dates, words, empty strings, numbers, ids with `/`), exactly
  one in every hundred consecutive records, so they are spread evenly through the batch.

Blocks come from their own RNG streams, so the file is the same whatever the number of worker processes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from pathlib import Path

import numpy as np
from pyproj import Transformer

from benchmarks.generate import PARTITION, made_in_processes, write_once

BLOCK = 10_000  # a multiple of BAD_EVERY, so each window of a hundred records lies inside one block
BAD_EVERY = 100
LATE_SHARE, INVALID_SHARE, UTM_SHARE, DUPLICATE_SHARE = 0.10, 0.02, 0.10, 0.01
MULTI_SHARE, HOLE_SHARE, CRLF_SHARE = 0.05, 0.03, 0.05
STREAM = 0x5BE11  # keeps this generator's random streams apart from the default generator's

FEATURE_ORDERS = [  # (order, weight): half with properties first, some with type last
    (("properties", "type", "geometry"), 0.30),
    (("properties", "geometry", "type"), 0.20),
    (("type", "geometry", "properties"), 0.30),
    (("geometry", "properties", "type"), 0.10),
    (("type", "properties", "geometry"), 0.10),
]
OFFSETS = [("Z", 0, 0.40), ("+00:00", 0, 0.10), ("+01:00", 60, 0.15), ("+02:00", 120, 0.15)]
OFFSETS += [("-05:30", -330, 0.10), ("-03:00", -180, 0.05), ("+05:45", 345, 0.05)]
NUMBER_STYLES = [("shortest", 0.55), ("rounded", 0.25), ("17 digits", 0.10), ("exponent", 0.05), ("integer", 0.05)]
SEPARATORS = [  # (item separator, key separator, padding inside brackets)
    (",", ":", ""),
    (", ", ": ", ""),
    (" , ", " : ", ""),
    (", ", ": ", " "),
]
LONLAT_CRS = [(None, 0.60), ("EPSG:4326", 0.20), ("urn:ogc:def:crs:OGC:1.3:CRS84", 0.15), ("null", 0.05)]
UTM_CRS = [("EPSG:32633", 0.75), ("urn:ogc:def:crs:EPSG::32633", 0.25)]
BAD_VALUES = [
    ("arrival_time", "2024-06-31T10:00:00Z"),
    ("arrival_time", "2025-02-30T08:15:00+01:00"),
    ("arrival_time", "yesterday"),
    ("arrival_time", ""),
    ("arrival_time", 1741000000),
    ("processing_date", "2024-06-31"),
    ("processing_date", "2025-13-01"),
    ("processing_date", "today"),
    ("processing_date", ""),
    ("processing_date", 20250303),
    ("field_id", ""),
    ("field_id", 1234567),
    ("field_id", "FV/{n}"),
]
CROPS = ["Winterweizen", "Sommergerste", "Mais", "Raps", "Zuckerrübe", "Kartoffel", "Grünland", "Roggen"]
NOTES = ["Weizen – Öko", "Łąka trwała", "Zoë's parcel, 2. Schnitt ✓", "çayır 🌾", "畑 north", "plain note"]
NAMES = ["Zoë Ångström", "Jiří Novák", "Kovács Éva", "Ana Gonçalves", "Ole Ødegård"]


@dataclass(frozen=True)
class Raw:
    """Text that goes into the record as it is (pre-rendered coordinates)."""

    text: str


@dataclass(frozen=True)
class Style:
    item: str
    key: str
    pad: str
    ascii: bool


def dump(value, style: Style) -> str:
    """JSON text of `value` in `style`: a serializer of its own, so spacing and escapes can vary."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        text = encode_basestring_ascii if style.ascii else encode_basestring
        members = style.item.join(text(k) + style.key + dump(v, style) for k, v in value.items())
        return "{" + style.pad + members + style.pad + "}"
    if isinstance(value, list):
        return "[" + style.pad + style.item.join(dump(v, style) for v in value) + style.pad + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return encode_basestring_ascii(value) if style.ascii else encode_basestring(value)
    return repr(value)  # int, or float as json.dumps writes it (shortest round trip, 1e-05 for tiny ones)


def coordinates(parts: list[list[np.ndarray]], number_style: str, utm: bool, style: Style, multi: bool) -> Raw:
    """Polygon or MultiPolygon coordinates (rings closed), numbers spelled by `number_style`."""
    rings = [[np.vstack([r, r[:1]]) for r in p] for p in parts]
    if number_style in ("17 digits", "exponent"):
        spell = "%.17g" if number_style == "17 digits" else "%.16e"
        pairs = [[[[spell % v for v in pair] for pair in ring.tolist()] for ring in p] for p in rings]
        text = repr(pairs if multi else pairs[0]).replace("'", "")
    else:
        if number_style == "rounded":
            rings = [[np.round(r, 2 if utm else 7) for r in p] for p in rings]
        elif number_style == "integer" and utm:
            rings = [[np.round(r).astype(np.int64) for r in p] for p in rings]
        # repr of a list of Python floats writes each as repr(float) does: shortest round trip, up to 17 digits
        nested = [[r.tolist() for r in p] for p in rings]
        text = repr(nested if multi else nested[0])
    if style.item != ", ":
        text = text.replace(", ", style.item)
    if style.pad:
        text = text.replace("[", "[" + style.pad).replace("]", style.pad + "]")
    return Raw(text)


def timestamp(utc: dt.datetime, offset: tuple[str, int], digits: int) -> str:
    """The instant `utc` written in local time at `offset`, with `digits` fractional digits (truncated)."""
    suffix, minutes = offset
    local = utc + dt.timedelta(minutes=minutes)
    fraction = "." + f"{utc.microsecond:06d}"[:digits] if digits else ""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + suffix


def _pick(rng: np.random.Generator, choices: list[tuple], count: int) -> np.ndarray:
    weights = np.array([c[-1] for c in choices])
    return rng.choice(len(choices), size=count, p=weights / weights.sum())


def _rings(rng: np.random.Generator, count: int, lon0, lat0, radius) -> list[np.ndarray]:
    """One star-shaped ring per record in lon/lat (angles increase, so each ring is simple)."""
    k = rng.integers(20, 61, count)
    ends = np.cumsum(k)
    owner = np.repeat(np.arange(count), k)
    step = np.arange(ends[-1]) - np.repeat(ends - k, k)
    angle = 2 * np.pi * (step + 0.8 * rng.random(len(owner))) / k[owner]
    r = radius[owner] * rng.uniform(0.75, 1.0, len(owner))
    lat = lat0[owner] + r * np.sin(angle) / 111_132.0
    lon = lon0[owner] + r * np.cos(angle) / (111_320.0 * np.cos(np.radians(lat0[owner])))
    return np.split(np.column_stack([lon, lat]), ends[:-1])


def _data(rng: np.random.Generator, number: int) -> dict:
    """The publisher's attributes: a few fixed keys and a shuffled subset of nested, listed, unicode ones."""
    extras = {
        "notes": NOTES[number % len(NOTES)],
        "tags": ["north", "irrigated", "drained"][: 1 + number % 3],
        "soil": {"texture": "loam", "ph": float(rng.uniform(5.0, 8.0)), "samples": [{"depth_cm": 30, "n": 1e-05}]},
        "yields_t_ha": [float(v) for v in rng.uniform(4.0, 9.0, 3)],
        "tolerance_deg": float(rng.choice([1e-05, 2.5e-07, 0.0001])),
        "operator": {"name": NAMES[number % len(NAMES)], "phone": None},
        "declared_area_ha": float(rng.uniform(0.5, 40.0)),
        "history": [{"year": 2023, "crop": CROPS[number % len(CROPS)]}, {"year": 2024, "crop": "Mais"}],
    }
    keys = [k for k in extras if rng.random() < 0.4]
    rng.shuffle(keys)
    return {
        "crop": CROPS[number % len(CROPS)],
        "farm_id": f"FARM-{number % 50_000:05d}",
        "season": 2025,
        "organic": bool(number % 8 == 0),
        **{k: extras[k] for k in keys},
    }


def field_id(number: int) -> str:
    """Ids in a few spellings, a function of the field's number so a re-delivery keeps its id."""
    kind = number % 20
    if kind < 14:
        return f"FV-{number:09d}"
    if kind < 17:
        return f"fv_{number}"
    if kind < 19:
        return f"Schlag-Ö-{number}"
    return f"{number * 2654435761 % (1 << 64):016x}"


def _block(args: tuple[int, int, int, int]) -> bytes:
    """Records [start, start + count) as bytes; a pure function of its arguments."""
    seed, index, start, count = args
    rng = np.random.default_rng([seed, STREAM, index])
    utm = rng.random(count) < UTM_SHARE
    lon0 = np.where(utm, rng.uniform(12.5, 17.5, count), rng.uniform(5.0, 24.0, count))
    lat0 = rng.uniform(45.5, 54.5, count)
    radius = rng.uniform(80.0, 400.0, count)
    rings = _rings(rng, count, lon0, lat0, radius)
    shape = rng.random(count)
    multi, hole = shape < MULTI_SHARE, (shape >= MULTI_SHARE) & (shape < MULTI_SHARE + HOLE_SHARE)
    invalid = rng.random(count) < INVALID_SHARE
    lateness = rng.random(count)
    late_prev, late_after = lateness < LATE_SHARE / 2, (lateness >= LATE_SHARE / 2) & (lateness < LATE_SHARE)
    arrival_s = np.where(late_after, rng.integers(86_400 + 60, 86_400 + 72_000, count), rng.integers(0, 86_400, count))
    arrival_us, intended_s = rng.integers(0, 1_000_000, count), rng.integers(0, 86_400, count)
    dup_back = np.where(rng.random(count) < DUPLICATE_SHARE, rng.integers(1, 500, count), 0)
    bad_at = {w + int(rng.integers(0, BAD_EVERY)) for w in range(0, count, BAD_EVERY)}
    picks = {
        "order": _pick(rng, FEATURE_ORDERS, count),
        "offset": _pick(rng, OFFSETS, count),
        "intended_offset": _pick(rng, OFFSETS, count),
        "numbers": _pick(rng, NUMBER_STYLES, count),
        "separators": rng.integers(0, len(SEPARATORS), count),
        "lonlat_crs": _pick(rng, LONLAT_CRS, count),
        "utm_crs": _pick(rng, UTM_CRS, count),
        "bad": rng.integers(0, len(BAD_VALUES), count),
    }
    digits = np.where(rng.random(count) < 0.5, 0, rng.integers(1, 7, count))
    coin = rng.random((count, 6))  # ascii escapes, datetime date, shuffled properties, geometry order, CRLF, blank
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    day = dt.datetime.combine(PARTITION, dt.time(), dt.UTC)

    out = []
    for i in range(count):
        number = int(start + i - (dup_back[i] if dup_back[i] <= i else 0))
        ring = rings[i].copy()
        if invalid[i]:  # a bow-tie: two vertices on opposite sides swapped
            a, b = 0, len(ring) // 2
            ring[[a, b]] = ring[[b, a]]
        centre = np.array([lon0[i], lat0[i]])
        parts = [[ring]]
        if hole[i]:
            parts[0].append((ring[::-1] - centre) * 0.3 + centre)
        if multi[i]:
            parts.append([ring + [3 * radius[i] / (111_320.0 * np.cos(np.radians(lat0[i]))), 0.0]])
        if utm[i]:
            parts = [[np.column_stack(to_utm.transform(r[:, 0], r[:, 1])) for r in p] for p in parts]
        style = Style(*SEPARATORS[picks["separators"][i]], ascii=bool(coin[i, 0] < 0.5))
        number_style = NUMBER_STYLES[picks["numbers"][i]][0]
        geometry = {
            "type": "MultiPolygon" if multi[i] else "Polygon",
            "coordinates": coordinates(parts, number_style, bool(utm[i]), style, bool(multi[i])),
        }
        if coin[i, 3] < 0.2:
            geometry = {"coordinates": geometry["coordinates"], "type": geometry["type"]}

        arrival = day + dt.timedelta(seconds=int(arrival_s[i]), microseconds=int(arrival_us[i]))
        intended = day - dt.timedelta(days=1) if late_prev[i] else day
        if coin[i, 1] < 0.2:  # a full datetime whose UTC day is the intended date
            instant = intended + dt.timedelta(seconds=int(intended_s[i]))
            processing_date = timestamp(instant, OFFSETS[picks["intended_offset"][i]][:2], 0)
        else:
            processing_date = intended.date().isoformat()
        props: dict = {
            "field_id": field_id(number),
            "arrival_time": timestamp(arrival, OFFSETS[picks["offset"][i]][:2], int(digits[i])),
            "processing_date": processing_date,
        }
        crs = UTM_CRS[picks["utm_crs"][i]][0] if utm[i] else LONLAT_CRS[picks["lonlat_crs"][i]][0]
        if crs is not None:
            props["crs"] = None if crs == "null" else crs
        props["data"] = _data(rng, number)
        if i in bad_at:
            key, value = BAD_VALUES[picks["bad"][i]]
            props[key] = value.replace("{n}", str(number)) if isinstance(value, str) else value
        if coin[i, 2] < 0.6:
            keys = list(props)
            props = {keys[j]: props[keys[j]] for j in rng.permutation(len(keys))}

        members = {"type": "Feature", "geometry": geometry, "properties": props}
        feature = {k: members[k] for k in FEATURE_ORDERS[picks["order"][i]][0]}
        ending = "\r\n" if coin[i, 4] < CRLF_SHARE else " \n" if coin[i, 5] < 0.02 else "\n"
        out.append(dump(feature, style) + ending)
    return "".join(out).encode("utf-8")


def generate(path: Path, records: int, seed: int = 42, workers: int | None = None) -> Path:
    """Write `records` records to `path` (atomically) unless the file is already there."""
    jobs = [(seed, b, s, min(BLOCK, records - s)) for b, s in enumerate(range(0, records, BLOCK))]
    return write_once(path, lambda: made_in_processes(_block, jobs, workers))


def batch_path(cache: Path, records: int, seed: int) -> Path:
    return Path(cache) / f"varied-{records}-s{seed}.geojsonl"
