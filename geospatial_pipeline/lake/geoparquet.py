"""GeoParquet 1.1 for the published fields and the late batches: streamed a row group at a time, `geo`
metadata and bbox written at close, and, for partitions of more than one row group, rows grouped along a
Hilbert curve through their bbox centres so a reader's spatial filter skips most row groups."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import CRS

from geospatial_pipeline.core.schema import FEW_VALUES, FIELD_SCHEMA
from geospatial_pipeline.lake.store import ObjectInfo, ObjectStore

GEOPARQUET_VERSION = "1.1.0"
ROW_GROUP_ROWS = 65_536
_WKB_NAMES = {
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def wkb_types(wkb: pa.Array | pa.ChunkedArray) -> set[str]:
    """Geometry type names in a WKB column (nulls skipped), from the distinct 5-byte headers alone."""
    headers = pc.unique(pc.binary_slice(pc.drop_null(wkb), 0, 5)).to_pylist()
    found = set()
    for header in headers:
        code = int.from_bytes(header[1:5], "little" if header[:1] == b"\x01" else "big")
        found.add(_WKB_NAMES.get(code % 1000, "Unknown"))
    return found


def geo_metadata(crs: str, geometry_types: Iterable[str], bbox: list[float] | None) -> dict[str, Any]:
    """The `geo` file metadata of GeoParquet 1.1 for our single WKB column with a bbox covering."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": sorted(set(geometry_types)),
        "crs": CRS.from_user_input(crs).to_json_dict(),
        "orientation": "counterclockwise",
        "edges": "planar",
        "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}},
    }
    if bbox is not None:
        column["bbox"] = bbox
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": column}}


# Snappy, every Parquet reader's default codec. zstd made files a little smaller for several times the CPU
# (measurements: docs/performance.md, "Codecs").
OUTPUT_COMPRESSION = "snappy"


class GeoParquetFile:
    """Writes row groups of ROW_GROUP_ROWS as rows come; the `geo` metadata (types, bbox) is completed at
    close. At most one row group is held in memory, whatever the number of rows."""

    def __init__(self, path: Path, crs: str, schema: pa.Schema = FIELD_SCHEMA):
        self.path = path
        self.crs = crs
        self.schema = schema
        self.rows = 0
        self._types: set[str] = set()
        self._bbox = [np.inf, np.inf, -np.inf, -np.inf]
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(
            path,
            schema,
            compression=OUTPUT_COMPRESSION,
            use_dictionary=[name for name in FEW_VALUES if name in schema.names],
            write_statistics=True,
            store_schema=False,
        )

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        self._types |= wkb_types(table["geometry"])
        bbox = table["bbox"].combine_chunks()
        self._bbox = [
            min(self._bbox[0], pc.min(bbox.field("xmin")).as_py()),
            min(self._bbox[1], pc.min(bbox.field("ymin")).as_py()),
            max(self._bbox[2], pc.max(bbox.field("xmax")).as_py()),
            max(self._bbox[3], pc.max(bbox.field("ymax")).as_py()),
        ]
        self.rows += table.num_rows
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        full = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP_ROWS
        if full:
            self._writer.write_table(table.slice(0, full), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    @property
    def bbox(self) -> list[float] | None:
        return [float(v) for v in self._bbox] if self.rows else None

    def close(self) -> dict[str, Any]:
        self._flush(final=True)
        meta = geo_metadata(self.crs, self._types, self.bbox)
        self._writer.add_key_value_metadata({"geo": json.dumps(meta)})
        self._writer.close()
        return meta


class StagedGeoParquet:
    """A GeoParquetFile built in a scratch folder; finish() completes it, publish() then puts it in place in
    one atomic PUT/rename."""

    def __init__(self, crs: str, work_dir: Path):
        with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".parquet", delete=False) as tmp:
            self.path = Path(tmp.name)
        self.file = GeoParquetFile(self.path, crs)
        self.meta: dict[str, Any] = {}

    def finish(self) -> None:
        self.meta = self.file.close()

    def publish(self, store: ObjectStore, key: str) -> tuple[ObjectInfo, dict[str, Any], int]:
        try:
            info = store.put_file(key, self.path, "application/vnd.apache.parquet", consume=True)
            return info, self.meta, self.file.rows
        finally:
            self.path.unlink(missing_ok=True)


def write_geoparquet(
    store: ObjectStore,
    key: str,
    tables: Iterable[pa.Table],
    crs: str,
    work_dir: Path,
) -> tuple[ObjectInfo, dict[str, Any], int]:
    """Stream tables into one GeoParquet object, published in a single atomic PUT/rename."""
    staged = StagedGeoParquet(crs, work_dir)
    try:
        for table in tables:
            staged.file.write(table)
        staged.finish()
    except BaseException:
        staged.path.unlink(missing_ok=True)
        raise
    return staged.publish(store, key)


def write_grouped_geoparquet(
    store: ObjectStore,
    key: str,
    tables: Callable[[list[str] | None], Iterable[pa.Table]],
    crs: str,
    work_dir: Path,
) -> tuple[ObjectInfo, dict[str, Any], int]:
    """write_geoparquet with rows grouped into row groups by location, for readers that skip by bbox.

    `tables(columns)` yields the rows (with their `seq`), again on every call; `tables(["bbox", "seq"])`
    may read just those columns. Rows are ranked along a Hilbert curve through their bbox centres and cut
    into groups of ROW_GROUP_ROWS, each written as one row group; within a group rows keep their order.
    A file of one row group is therefore in plain input order. Memory: two columns for the ranking and
    one row group at a time; the groups wait in Arrow IPC files under `work_dir`.
    """
    seqs, centres = [], []
    for table in tables(["bbox", "seq"]):
        bbox = table["bbox"].combine_chunks()
        x = (bbox.field("xmin").to_numpy() + bbox.field("xmax").to_numpy()) / 2
        y = (bbox.field("ymin").to_numpy() + bbox.field("ymax").to_numpy()) / 2
        seqs.append(table["seq"].to_numpy())
        centres.append(np.column_stack([x, y]).astype(np.float32))  # ranking precision is plenty
    seq = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    if len(seq) <= ROW_GROUP_ROWS:
        return write_geoparquet(store, key, tables(None), crs, work_dir)
    group = spatial_groups(np.concatenate(centres), ROW_GROUP_ROWS).astype(np.int32)
    del centres
    by_seq = np.argsort(seq)
    sorted_seq, sorted_group = seq[by_seq], group[by_seq]
    count = int(group.max()) + 1
    del seq, group, by_seq
    spill = Path(tempfile.mkdtemp(dir=work_dir, prefix="groups-"))
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    try:
        for table in tables(None):
            if table.num_rows == 0:
                continue
            table = table.select(_GROUPED_SCHEMA.names).cast(_GROUPED_SCHEMA)
            g = sorted_group[np.searchsorted(sorted_seq, table["seq"].to_numpy())]
            order = np.argsort(g, kind="stable")
            table, g = table.take(pa.array(order)), g[order]
            bounds = np.flatnonzero(np.diff(g)) + 1
            for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(g)], strict=True):
                k = int(g[start])
                if k not in writers:  # uncompressed: see _SPILL_OPTIONS
                    writers[k] = pa.ipc.new_file(spill / f"{k}.arrow", table.schema, options=_SPILL_OPTIONS)
                writers[k].write_table(table.slice(start, end - start))
        for writer in writers.values():
            writer.close()

        def groups_in_order() -> Iterator[pa.Table]:
            for k in range(count):
                with pa.memory_map(str(spill / f"{k}.arrow")) as source:
                    yield pa.ipc.open_file(source).read_all()

        return write_geoparquet(store, key, groups_in_order(), crs, work_dir)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


# The spill lives briefly and is read back through a memory map: uncompressed, that read copies nothing.
# lz4 cost CPU and saved little scratch disk, since the spill and the finished file never coexist in full
# (measurements: docs/performance.md, "Codecs").
_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)
_GROUPED_SCHEMA = FIELD_SCHEMA.append(pa.field("seq", pa.int64(), nullable=False))


def spatial_groups(centres: np.ndarray, size: int) -> np.ndarray:
    """Group number of each point: ranked along a Hilbert curve over their extent, `size` per group.

    The curve positions are computed a block of points at a time: the temporaries of the bit loop stay a
    few MB however many millions of rows the partition has."""
    n = len(centres)
    finite = np.isfinite(centres).all(axis=1)
    inside = centres[finite]
    lo = inside.min(axis=0) if len(inside) else np.zeros(2, centres.dtype)
    hi = inside.max(axis=0) if len(inside) else np.zeros(2, centres.dtype)
    del inside
    span = np.where(hi > lo, hi - lo, 1.0)
    side = (1 << _HILBERT_ORDER) - 1
    positions = np.empty(n, dtype=np.int64)
    for start in range(0, n, _HILBERT_BLOCK):
        block = centres[start : start + _HILBERT_BLOCK]
        cells = np.clip(np.nan_to_num((block - lo) / span * side, nan=0.0), 0, side).astype(np.int64)
        positions[start : start + len(block)] = _hilbert(cells[:, 0], cells[:, 1])
    rank = np.argsort(positions, kind="stable")
    del positions
    group = np.empty(n, dtype=np.int64)
    group[rank] = np.arange(n) // size
    return group


_HILBERT_BLOCK = 1 << 18


_HILBERT_ORDER = 16


def _hilbert(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance along the Hilbert curve of order _HILBERT_ORDER for integer cells (x, y), vectorised."""
    side = 1 << _HILBERT_ORDER
    x, y = x.copy(), y.copy()
    d = np.zeros(len(x), dtype=np.int64)
    s = side >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, side - 1 - x, x)
        y = np.where(flip, side - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d
