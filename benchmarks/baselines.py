"""The two baselines the pipeline is measured against, kept runnable so the ratios can be re-measured.

- The I/O floor: pyarrow reads the GeoJSONSeq lines and writes the same table to Parquet, no geometry
  work. `raw_copy` is the even lower floor of copying the lines as text into Parquet, reported beside it.
- The small-file floor: what this filesystem charges to create as many small files as a run writes late
  objects (two per late field), of their sizes, with no other work.
- The per-record reference: the seed's loop, one record at a time: a Pydantic model, `shape()`,
  `is_valid`, a transform per record, pyproj.Geod measures, rows collected and written to Parquet.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

BLOCK = 16 << 20


def io_floor(sources: list[Path], out_dir: Path) -> int:
    """pyarrow.json.read_json + Parquet (zstd) of each file: parse the lines into columns, write them; no
    checks. A batch that mixes nesting depths or kinds comes split into several files (floor_split.py)."""
    rows = 0
    for n, source in enumerate(sources):
        table = pajson.read_json(source, read_options=pajson.ReadOptions(block_size=BLOCK))
        pq.write_table(table, out_dir / f"{n}.parquet", compression="zstd")
        rows += table.num_rows
    return rows


def raw_copy(source: Path, out: Path) -> int:
    """Each line as one string cell (no JSON parsing at all) written to Parquet (zstd)."""
    table = pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=["line"], block_size=BLOCK),
        parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}),
    )
    pq.write_table(table, out, compression="zstd")
    return table.num_rows


def small_files(folder: Path, sizes: dict[int, int]) -> int:
    """Create files in a new staging folder ({size in bytes: how many}), then rename that folder into place
    (how the local lake publishes the late objects of a date folder that does not exist yet), one thread."""
    import os

    staging = folder / "staging"
    staging.mkdir()
    made = 0
    for size, count in sizes.items():
        body = b"x" * size
        for _ in range(count):
            fd = os.open(staging / f"{made}.geojson", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            made += 1
    os.rename(staging, folder / "objects")
    return made


def per_record_reference(source: Path, out: Path, partition: dt.date, window: dt.timedelta) -> int:
    """The seed-style loop: every record validated, parsed, checked, transformed and measured alone."""
    import orjson
    import shapely
    from pydantic import ValidationError
    from pyproj import Geod, Transformer
    from pyproj.exceptions import CRSError
    from shapely.geometry import mapping, shape
    from shapely.ops import transform

    from geospatial_pipeline.core.records import FieldProperties

    geod = Geod(ellps="WGS84")
    transformers: dict[str, Transformer | None] = {}
    columns: dict[str, list] = {
        k: [] for k in ("field_id", "processing_date", "arrival_time", "arrived_late", "area_ha", "perimeter_m")
    }
    columns |= {"source_crs": [], "data": [], "geometry": [], "geojson": []}
    rejected = 0
    with source.open("rb") as f:
        for line in f:
            try:
                feature = orjson.loads(line)
                props = FieldProperties(**feature["properties"])
                geom = shape(feature["geometry"])
            except (ValueError, KeyError, TypeError, AttributeError, ValidationError, shapely.errors.GEOSException):
                rejected += 1  # AttributeError: a geometry that is not an object
                continue
            if geom.is_empty or not geom.is_valid:
                rejected += 1
                continue
            crs = props.crs or "EPSG:4326"
            if crs != "EPSG:4326":
                if crs not in transformers:
                    try:
                        transformers[crs] = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
                    except CRSError:
                        transformers[crs] = None
                if transformers[crs] is None:
                    rejected += 1
                    continue
                geom = transform(transformers[crs].transform, geom)
            geom = shapely.orient_polygons(geom, exterior_cw=False)
            area, perimeter = geod.geometry_area_perimeter(geom)
            intended, arrival = _utc_date(props.processing_date), _utc(props.arrival_time)
            closes = dt.datetime.combine(intended, dt.time(), dt.UTC) + window
            late = intended < partition or arrival > closes
            columns["field_id"].append(props.field_id)
            columns["processing_date"].append(intended)
            columns["arrival_time"].append(arrival)
            columns["arrived_late"].append(late)
            columns["area_ha"].append(abs(area) / 10_000)
            columns["perimeter_m"].append(perimeter)
            columns["source_crs"].append(crs)
            columns["data"].append(orjson.dumps(props.data, option=orjson.OPT_SORT_KEYS).decode())
            columns["geometry"].append(geom.wkb)
            columns["geojson"].append(orjson.dumps(mapping(geom)).decode() if late else None)
    pq.write_table(pa.table(columns), out, compression="zstd")
    return len(columns["field_id"]) + rejected


def _utc(instant: dt.datetime) -> dt.datetime:
    """The model keeps an instant as written: naive means UTC."""
    return instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant.astimezone(dt.UTC)


def _utc_date(intended: dt.date) -> dt.date:
    """`processing_date` is a date, or a date and time whose UTC day is meant."""
    return _utc(intended).date() if isinstance(intended, dt.datetime) else intended
