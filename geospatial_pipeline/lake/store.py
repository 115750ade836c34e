"""ObjectStore: the one small interface to the lake; its backends are a local folder (local_store.py) and
S3 (s3_store.py).

Writes are atomic per object on both backends: S3 PUTs are, and the local backend writes a temporary file
and renames it, so a reader never sees half an object. Every key is checked segment by segment
(checked_key) before the backend's root or prefix is put in front of it, so no key can name anything
outside the lake.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from geospatial_pipeline.lake.keys import UnsafeKeyError, segment

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

T = TypeVar("T")

OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the lake root
    size: int
    etag: str  # content hash where the backend offers one


class ObjectStoreError(RuntimeError):
    """A storage operation failed after the backend's own retries."""


def checked_key(key: str, prefix_ok: bool = False) -> str:
    """Keys are relative and normalised: the store's prefix is the only root they can name."""
    if not isinstance(key, str):
        raise UnsafeKeyError(f"object key must be a string: {key!r}")
    body = key[:-1] if prefix_ok and key.endswith("/") else key
    if body.startswith("/") or body.endswith("/"):
        raise UnsafeKeyError(f"object key must be relative and name an object: {key!r}")
    for part in body.split("/"):
        segment(part)
    return key


def checked_prefix(prefix: str) -> str:
    """A listing prefix: empty (everything) or a key prefix that may end in '/' or inside a segment."""
    return checked_key(prefix, prefix_ok=True) if prefix else prefix


class ObjectStore(ABC):
    # put_many spreads one call over a pool of connections: a second caller at the same time adds no speed.
    pooled_put_many = True

    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = OCTETS) -> ObjectInfo: ...

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = OCTETS, *, consume: bool = False) -> ObjectInfo:
        """The file's bytes as one object. With `consume` the caller gives the file up: a store on the same
        file system may move it into place instead of copying it (the path is then gone)."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A streaming binary reader; the caller closes it."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under prefix, recursively, in key order (paginated on S3)."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def list_shallow(self, prefix: str) -> Iterator[ObjectInfo]:
        """`list`, except that an etag which would cost reading the whole object may be left empty ("");
        a reader of the whole object can make it with `etag_hash`."""
        return self.list(prefix)

    def etag_hash(self) -> hashlib._Hash:
        """A hashlib object whose hexdigest of an object's bytes is the etag list_shallow left empty."""
        return hashlib.md5(usedforsecurity=False)

    def put_many(
        self, items: Sequence[tuple[str, bytes, str]], concurrency: int = 16, *, etags: bool = True
    ) -> builtins.list[ObjectInfo]:
        """put_bytes for many small objects through a bounded pool; results in input order. With `etags`
        off the caller keeps none, and a backend that would have to compute them may leave them empty."""
        return in_pool(len(items), concurrency, lambda j: self.put_bytes(*items[j]))

    def staged_writer(self) -> StagedWriter:
        """A writer of many small objects (put_many) that may keep them out of sight until publish(), where
        the backend can then show them together more cheaply; discard() drops those not shown yet. Every
        object is whole whenever it appears. Here each put shows at once."""
        return StagedWriter(self)

    def open_seekable(self, key: str) -> IO[bytes]:
        """A seekable reader fetching byte ranges on demand: Parquet footers without the whole file."""
        info = self.head(key)
        if info is None:
            raise ObjectStoreError(f"no such object: {self.uri(key)}")
        return io.BufferedReader(_RangeReader(self, key, info.size), buffer_size=1 << 20)


class StagedWriter:
    """ObjectStore.staged_writer's default: every put goes straight to the store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def put_many(
        self, items: Sequence[tuple[str, bytes, str]], concurrency: int = 16, *, etags: bool = True
    ) -> builtins.list[ObjectInfo]:
        return self.store.put_many(items, concurrency, etags=etags)

    def publish(self) -> None:
        """Show every object put so far (those not yet shown)."""

    def discard(self) -> None:
        """Drop the objects not yet shown; the writer is done either way."""


def in_pool(count: int, concurrency: int, put: Callable[[int], T]) -> list[T]:
    """put(0..count-1) on at most `concurrency` threads, each taking every k-th index: one task per thread
    rather than one future per object. The first failure stops the others and is raised."""
    workers = max(1, min(concurrency, count))
    if workers == 1:
        return [put(j) for j in range(count)]
    out: list[Any] = [None] * count
    failed = threading.Event()

    def run(first: int) -> None:
        for j in range(first, count, workers):
            if failed.is_set():
                return
            try:
                out[j] = put(j)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="put") as pool:
        futures = [pool.submit(run, k) for k in range(workers)]
    for future in futures:
        future.result()
    return out


class _RangeReader(io.RawIOBase):
    def __init__(self, store: ObjectStore, key: str, size: int):
        self.store, self.key, self.size, self.pos = store, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self.size - self.pos)
        if length <= 0:
            return 0
        data = self.store.read_range(self.key, self.pos, length)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)
