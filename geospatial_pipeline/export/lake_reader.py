"""What the pipeline published, read through the project's ObjectStore a partition at a time.

Every read goes through the store (local folder or S3 with the pipeline's retries and credentials), and
every failure comes back as an ExportError naming the object: an analyst sees which file is missing or
broken, not a traceback. Parquet files are read a row group at a time, so memory is bounded by one
row group whatever the partition's size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from geospatial_pipeline.export import ExportError
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.store import ObjectStore, ObjectStoreError

# A Parquet object up to this size is fetched in one GET; a larger one is read by byte ranges (S3).
WHOLE_OBJECT_BYTES = 64 << 20
# Manifests looked up at once (HEAD requests on S3).
LOOKUP_THREADS = 8


class LakeReader:
    def __init__(self, store: ObjectStore):
        self.store = store

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[None]:
        """Turns any failure to read `key` into an ExportError that names it."""
        try:
            yield
        except ExportError:
            raise
        except (ObjectStoreError, OSError, ValueError, pa.ArrowException) as exc:
            raise ExportError(f"cannot read {self.store.uri(key)}: {exc}") from exc

    def published(self, days: list[dt.date]) -> tuple[list[dt.date], list[dt.date]]:
        """(days whose manifest exists, days without one): a partition is published once its manifest is."""
        wanted = [keys.manifest_key(day) for day in days]

        def head(key: str):
            with self.reading(key):
                return self.store.head(key)

        with ThreadPoolExecutor(max_workers=LOOKUP_THREADS) as pool:
            found = list(pool.map(head, wanted))
        present = [day for day, info in zip(days, found, strict=True) if info is not None]
        missing = [day for day, info in zip(days, found, strict=True) if info is None]
        return present, missing

    def manifest(self, day: dt.date) -> dict:
        key = keys.manifest_key(day)
        with self.reading(key):
            manifest = orjson.loads(self.store.get_bytes(key))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict):
            raise ExportError(f"cannot read {self.store.uri(key)}: not a partition manifest (no counts)")
        return manifest

    def require(self, key: str) -> None:
        """ExportError unless the object exists (locally by opening it: a local head() hashes the file)."""
        with self.reading(key):
            if isinstance(self.store, LocalStore):
                self.store.open(key).close()
            elif self.store.head(key) is None:
                raise ObjectStoreError(f"no such object: {self.store.uri(key)}")

    def late_batch_keys(self, day: dt.date) -> list[str]:
        """The late batches stored for intended date `day`, one per detecting run, in key order."""
        prefix = keys.late_batches_prefix(day)
        with self.reading(prefix):
            listed = [info.key for info in self.store.list(prefix)]
        return [key for key in listed if keys.parse_late_batch_key(key) is not None]

    def parquet(self, key: str) -> pq.ParquetFile:
        with self.reading(key):
            return pq.ParquetFile(self._source(key))

    def _source(self, key: str) -> IO[bytes] | pa.BufferReader:
        if isinstance(self.store, LocalStore):
            return self.store.open(key)  # a real file: seekable, nothing fetched up front
        info = self.store.head(key)
        if info is None:
            raise ObjectStoreError(f"no such object: {self.store.uri(key)}")
        if info.size <= WHOLE_OBJECT_BYTES:
            return pa.BufferReader(self.store.get_bytes(key))
        return self.store.open_seekable(key)

    def footer(self, key: str) -> pq.FileMetaData:
        """A Parquet object's footer alone (on S3 a few byte ranges, not the object)."""
        with self.reading(key):
            if isinstance(self.store, LocalStore):
                with self.store.open(key) as f:
                    return pq.read_metadata(f)
            with self.store.open_seekable(key) as f:
                return pq.read_metadata(f)

    def geo(self, key: str, footer: pq.FileMetaData) -> dict:
        """The GeoParquet `geo` metadata of the primary (WKB) geometry column."""
        raw = (footer.metadata or {}).get(b"geo")
        with self.reading(key):
            if raw is None:
                raise ValueError("no GeoParquet 'geo' metadata")
            geo = json.loads(raw)
            column = geo["columns"][geo["primary_column"]]
            if column.get("encoding") != "WKB":
                raise ValueError(f"geometry encoding {column.get('encoding')!r}, expected WKB")
        return column

    def row_groups(self, key: str, parquet: pq.ParquetFile | None = None) -> Iterator[pa.Table]:
        """The rows of a Parquet object, one row group at a time."""
        parquet = parquet or self.parquet(key)
        for index in range(parquet.num_row_groups):
            with self.reading(key):
                table = parquet.read_row_group(index)
            yield table

    def quarantine_lines(self, day: dt.date, chunk_lines: int = 10_000) -> Iterator[list[bytes]]:
        """The quarantine file of `day` (GeoJSONSeq) in chunks of lines, streamed."""
        key = keys.rejected_key(day)
        with self.reading(key):
            stream = self.store.open(key)
        with stream:
            chunk: list[bytes] = []
            while True:
                with self.reading(key):
                    line = stream.readline()
                if not line:
                    break
                if line.strip():
                    chunk.append(line)
                if len(chunk) >= chunk_lines:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
