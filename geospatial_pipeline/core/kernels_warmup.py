"""Compile every numba kernel into its cache by classifying a few records (run at image build time):

    python -m geospatial_pipeline.core.kernels_warmup

The records take the paths a real batch takes (Polygon, MultiPolygon with a hole, a projected CRS, a bow-tie
for GEOS, a FeatureCollection), so the kernels compile for the argument types production passes them, not
for some other signature.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from numba.core.dispatcher import Dispatcher

from geospatial_pipeline.core import collection, scan
from geospatial_pipeline.core.features import parse_chunk
from geospatial_pipeline.core.geometry import kernels, measures
from geospatial_pipeline.core.partition import classify_chunk
from geospatial_pipeline.core.reading import RawChunk
from geospatial_pipeline.core.rules import Rules

PARTITION = dt.date(2025, 1, 2)
RING = [[14.0, 46.0], [14.01, 46.0], [14.01, 46.01], [14.0, 46.01], [14.0, 46.0]]
HOLE = [[14.002, 46.002], [14.002, 46.004], [14.004, 46.004], [14.002, 46.002]]
UTM = [[500000.0, 5100000.0], [500100.0, 5100000.0], [500100.0, 5100100.0], [500000.0, 5100000.0]]
EAST = [[x + 0.05, y] for x, y in RING]
BOW_TIE = [[14.0, 46.0], [14.01, 46.01], [14.01, 46.0], [14.0, 46.01], [14.0, 46.0]]


def _feature(field_id: str, geometry: dict[str, object], **properties: str) -> bytes:
    props = {"field_id": field_id, "arrival_time": "2025-01-02T05:00:00Z", "processing_date": "2025-01-02"}
    return json.dumps({"type": "Feature", "geometry": geometry, "properties": {**props, **properties}}).encode()


def sample() -> list[bytes]:
    exact = [[x + 1e-14, y] for x, y in RING[:-1]] + [[RING[0][0] + 1e-14, RING[0][1]]]  # 17 digits
    return [
        _feature("W-1", {"type": "Polygon", "coordinates": [RING]}),
        _feature("W-2", {"type": "MultiPolygon", "coordinates": [[RING, HOLE], [EAST]]}),
        _feature("W-3", {"type": "Polygon", "coordinates": [UTM]}, crs="EPSG:32633"),
        _feature("W-4", {"type": "Polygon", "coordinates": [BOW_TIE]}),
        _feature("W-5", {"type": "Polygon", "coordinates": [exact]}),
        _feature("W-6", {"type": "Polygon", "coordinates": [RING]}, processing_date="2025-01-01"),
    ]


def main() -> None:
    rules = Rules()
    texts = sample()
    chunk = RawChunk("warmup.geojsonl", texts, list(range(1, len(texts) + 1)))
    outcome = classify_chunk(parse_chunk(chunk), PARTITION, rules, dt.datetime(2025, 1, 3, tzinfo=dt.UTC))
    collection.read(b'{"type":"FeatureCollection","features":[' + texts[0] + b"]}")
    entry: list[Dispatcher[Callable[..., object]]] = [  # those called from Python; the rest are compiled into these
        scan._records,
        collection._collection,
        measures._rings,
        kernels.star_rings,
        kernels.ring_orientation,
    ]
    missing = sorted(k.py_func.__name__ for k in entry if not k.signatures)
    if missing:
        raise SystemExit(f"kernels not compiled by the warm-up: {missing}")
    print(f"{len(entry)} kernels compiled; {outcome.records} records, {len(outcome.rejected)} rejected")


if __name__ == "__main__":
    main()
