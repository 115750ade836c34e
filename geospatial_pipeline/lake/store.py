"""ObjectStore: the one small interface to the lake, with a local-folder and an S3 backend.

No other module talks to boto3. Writes are atomic per object on both backends: S3 PUTs are, and the
local backend writes a temporary file and renames it, so a reader never sees half an object. Every key
is checked segment by segment before the backend's root or prefix is put in front of it, so no key can
name anything outside the lake. S3 reads resume (by byte range, pinned to the ETag) when a connection
drops mid-body, which botocore's request retries do not cover.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import uuid
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

# Local temporary files live here, outside every key the lake can name.
LOCAL_TMP_DIR = ".lake-tmp"
# Times an S3 read resumes after the body broke off, per object opened.
READ_RESUMES = 5
OCTETS = "application/octet-stream"
# Files at least this large are listed without their etag (a full read each) by list_shallow.
SHALLOW_MIN_BYTES = 1 << 20
# Threads for many small local writes. One: creating and renaming files in one folder serialises on the
# folder's lock in the kernel, so more threads mostly spin and cost kernel CPU the GeoParquet lane needs
# (measurements: docs/performance.md, "Small files").
LOCAL_PUT_THREADS = 1


def _local_etag_hash(data: bytes = b"") -> hashlib._Hash:
    """The local folder's etag: the content's SHA-256 (hex). S3's is an MD5, but nothing compares etags
    across backends, and SHA-256 is the faster of the two on current CPUs (SHA extensions): a partition
    hashes its whole input while reading it and its GeoParquet once written."""
    return hashlib.sha256(data, usedforsecurity=False)


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the lake root
    size: int
    etag: str  # content hash where the backend offers one


class ObjectStoreError(RuntimeError):
    """A storage operation failed after the backend's own retries."""


def _check_relative(key: str, prefix_ok: bool = False) -> str:
    """Keys are relative and normalised: the store's prefix is the only root they can name."""
    if not isinstance(key, str):
        raise UnsafeKeyError(f"object key must be a string: {key!r}")
    body = key[:-1] if prefix_ok and key.endswith("/") else key
    if body.startswith("/") or body.endswith("/"):
        raise UnsafeKeyError(f"object key must be relative and name an object: {key!r}")
    for part in body.split("/"):
        segment(part)
    return key


def _check_prefix(prefix: str) -> str:
    """A listing prefix: empty (everything) or a key prefix that may end in '/' or inside a segment."""
    return _check_relative(prefix, prefix_ok=True) if prefix else prefix


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
        return _in_pool(len(items), concurrency, lambda j: self.put_bytes(*items[j]))

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


def _in_pool(count: int, concurrency: int, put: Callable[[int], T]) -> list[T]:
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


class LocalStore(ObjectStore):
    """A folder on disk laid out exactly like the bucket.

    Temporary files are written under `LOCAL_TMP_DIR` at the root and renamed into place, so a listing
    never shows them and no object, whatever its name, is mistaken for one.
    """

    # One put_many writes one file at a time (LOCAL_PUT_THREADS): two callers in different threads use two cores.
    pooled_put_many = False

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        _check_relative(key)
        if key.split("/", 1)[0] == LOCAL_TMP_DIR:
            raise UnsafeKeyError(f"{LOCAL_TMP_DIR}/ is reserved for the store's temporary files: {key!r}")
        return self.root / key

    def _tmp_file(self, suffix: str) -> tuple[int, str]:
        tmp_dir = self.root / LOCAL_TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=suffix)

    def uri(self, key: str) -> str:
        path = self.root / _check_relative(key, prefix_ok=True)
        return path.as_uri() + ("/" if key.endswith("/") else "")

    def put_bytes(self, key: str, data: bytes, content_type: str = OCTETS) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = self._tmp_file(path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ObjectInfo(key, len(data), _local_etag_hash(data).hexdigest())

    def put_many(
        self, items: Sequence[tuple[str, bytes, str]], concurrency: int = 16, *, etags: bool = True
    ) -> builtins.list[ObjectInfo]:
        """Many small files: write-and-rename as in put_bytes, with each folder checked and made once and
        paths as plain strings (a late field's two objects cost little more than the kernel's work), on
        LOCAL_PUT_THREADS threads."""
        return self._put_at(items, *self._targets(items), concurrency, etags)

    def _put_at(
        self,
        items: Sequence[tuple[str, bytes, str]],
        targets: builtins.list[str],
        folders: builtins.list[str],
        concurrency: int,
        etags: bool,
    ) -> builtins.list[ObjectInfo]:
        """put_many for items whose keys _targets has checked and placed."""
        for path in folders:
            os.makedirs(path, exist_ok=True)
        tmp_dir = self.root / LOCAL_TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{tmp_dir}/put-{os.getpid()}-{uuid.uuid4().hex[:8]}-"

        def put(j: int) -> ObjectInfo:
            key, data, _ = items[j]
            tmp = f"{tag}{j}"
            try:
                _write_file(tmp, data, os.O_EXCL)
                os.replace(tmp, targets[j])
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return ObjectInfo(key, len(data), _local_etag_hash(data).hexdigest() if etags else "")

        return _in_pool(len(items), min(concurrency, LOCAL_PUT_THREADS), put)

    def _targets(self, items: Sequence[tuple[str, bytes, str]]) -> tuple[builtins.list[str], builtins.list[str]]:
        """Each item's file path, and the distinct folders they are in; every key checked, each folder once."""
        folders: dict[str, str] = {}
        targets = []
        for key, _, _ in items:
            folder, _, name = key.rpartition("/") if isinstance(key, str) else ("", "", key)
            if folder not in folders:
                folders[folder] = str(self._path(key).parent)
            segment(name)
            targets.append(f"{folders[folder]}/{name}")
        return targets, list(folders.values())

    def staged_writer(self) -> StagedWriter:
        return _LocalStagedWriter(self)

    def put_file(self, key: str, path: Path, content_type: str = OCTETS, *, consume: bool = False) -> ObjectInfo:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if consume:
            try:  # a rename is atomic like the copy-and-rename below, without writing the bytes again
                os.replace(path, target)
                return self._info(key, target)
            except OSError:  # another file system (or a folder in the way): copy it as usual
                pass
        fd, tmp = self._tmp_file(target.suffix)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(key, target)

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectStoreError(f"no such object: {self.uri(key)}") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for rel in self._keys_under(prefix):
            yield self._info(rel, self.root / rel)

    def list_shallow(self, prefix: str) -> Iterator[ObjectInfo]:
        """Large files without their etag (a full read each): a reader of the whole file hashes it as it goes,
        and head() still gives it. Small files, and any whose name is not a valid key, are hashed here."""
        for rel in self._keys_under(prefix):
            path = self.root / rel
            size = path.stat().st_size
            try:
                _check_relative(rel)
            except UnsafeKeyError:
                size = -1
            yield ObjectInfo(rel, size, "") if size >= SHALLOW_MIN_BYTES else self._info(rel, path)

    def _keys_under(self, prefix: str) -> builtins.list[str]:
        _check_prefix(prefix)
        base = self.root / prefix.rstrip("/") if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != LOCAL_TMP_DIR]
            for name in filenames:
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    found.append(rel)
        return sorted(found)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key) as f:
            f.seek(start)
            return f.read(length)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return self._info(key, path) if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def etag_hash(self) -> hashlib._Hash:
        return _local_etag_hash()

    @staticmethod
    def _info(key: str, path: Path) -> ObjectInfo:
        digest = _local_etag_hash()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return ObjectInfo(key, path.stat().st_size, digest.hexdigest())


class _LocalStagedWriter(StagedWriter):
    """Objects of a folder that does not exist yet go straight into a private staging folder under their own
    names, and publish() renames that folder into place: one rename for all of them, where an ordinary put
    writes a temporary file and renames each (less kernel time per file). Folders
    that exist get ordinary puts. A staged folder whose target has appeared meanwhile (another run) is
    moved file by file, each replacing its namesake. Until publish() nothing staged is in the lake; a
    process killed before leaves the staging folder in LOCAL_TMP_DIR, which no listing shows."""

    store: LocalStore

    def __init__(self, store: LocalStore):
        super().__init__(store)
        self._lock = threading.Lock()  # two threads may write through one writer
        self._staged: dict[str, tuple[str, int]] = {}  # target folder -> staging folder, and a descriptor of it
        self._existing: set[str] = set()
        self._root: str | None = None

    def put_many(
        self, items: Sequence[tuple[str, bytes, str]], concurrency: int = 16, *, etags: bool = True
    ) -> builtins.list[ObjectInfo]:
        targets, folders = self.store._targets(items)
        staging = {folder: self._staging_for(folder) for folder in folders}
        out: builtins.list[Any] = [None] * len(items)
        ordinary = []
        for j, target in enumerate(targets):
            folder, _, name = target.rpartition("/")
            staged = staging[folder]
            if staged is None:
                ordinary.append(j)
                continue
            key, data, _ = items[j]
            # Opened relative to the staging folder: the kernel looks up one name, not the whole path.
            _write_file(name, data, os.O_TRUNC, dir_fd=staged[1])  # a key put twice: the later wins
            out[j] = ObjectInfo(key, len(data), _local_etag_hash(data).hexdigest() if etags else "")
        if ordinary:
            existing = [folder for folder in folders if staging[folder] is None]
            picked = [items[j] for j in ordinary]
            done = self.store._put_at(picked, [targets[j] for j in ordinary], existing, concurrency, etags)
            for j, info in zip(ordinary, done, strict=True):
                out[j] = info
        return out

    def _staging_for(self, folder: str) -> tuple[str, int] | None:
        with self._lock:
            if folder in self._staged:
                return self._staged[folder]
            if folder in self._existing or os.path.lexists(folder):
                self._existing.add(folder)
                return None
            if self._root is None:
                tmp_dir = self.store.root / LOCAL_TMP_DIR
                tmp_dir.mkdir(parents=True, exist_ok=True)
                self._root = tempfile.mkdtemp(dir=tmp_dir, prefix="staged-")
            staging = f"{self._root}/{len(self._staged)}"
            os.mkdir(staging)
            self._staged[folder] = (staging, os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            return self._staged[folder]

    def publish(self) -> None:
        with self._lock:
            staged, self._staged = self._staged, {}
        for folder, (staging, descriptor) in staged.items():
            os.close(descriptor)
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            try:
                os.rename(staging, folder)  # all its objects appear at once
                continue
            except OSError:  # the folder appeared meanwhile: one object at a time, each replacing its namesake
                os.makedirs(folder, exist_ok=True)
            for name in os.listdir(staging):
                os.replace(f"{staging}/{name}", f"{folder}/{name}")
            os.rmdir(staging)
        self.discard()

    def discard(self) -> None:
        with self._lock:
            root, staged, self._root, self._staged = self._root, self._staged, None, {}
        for _, descriptor in staged.values():
            os.close(descriptor)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _write_file(path: str, data: bytes, mode: int, dir_fd: int | None = None) -> None:
    """`data` as the file at `path` (relative to `dir_fd` if given), created (`mode`: O_EXCL or O_TRUNC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | mode, 0o644, dir_fd=dir_fd)
    try:
        written = os.write(fd, data)
        if written < len(data):  # a short write: the rest, until all of it is written
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class S3Store(ObjectStore):
    """s3://bucket/prefix/ through a boto3 client (built by dagster-aws's S3Resource in the shell).

    Request retries (throttling, 5xx, dropped connections) are botocore's, configured on the client;
    a failure after them becomes an ObjectStoreError naming the bucket and key.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            _check_relative(self.prefix)

    def _key(self, key: str, prefix_ok: bool = False) -> str:
        key = _check_relative(key, prefix_ok)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        if not self.prefix:
            return full_key
        if not full_key.startswith(self.prefix + "/"):
            raise ObjectStoreError(f"S3 listed s3://{self.bucket}/{full_key}, outside prefix {self.prefix}/")
        return full_key[len(self.prefix) + 1 :]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key, prefix_ok=True)}"

    def _call(
        self, what: str, key: str, fn: Callable[..., Any], *, rewind: IO[bytes] | None = None, **kwargs: Any
    ) -> Any:
        """One S3 call. botocore retries what it can; a response whose body breaks off while botocore
        reads it (a LIST page, say) is not among that, so it is retried here (every call is idempotent)."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = self.uri(key) if key else f"s3://{self.bucket}/{kwargs.get('Prefix', '')}"
        for attempt in range(READ_RESUMES + 1):
            if rewind is not None:
                rewind.seek(0)
            try:
                return fn(Bucket=self.bucket, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise ObjectStoreError(f"S3 {what} failed for {where}: {exc}") from exc
            except _broken_response_errors() as exc:
                if attempt == READ_RESUMES:
                    raise ObjectStoreError(f"S3 {what} failed for {where}: response kept breaking off: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def put_bytes(self, key: str, data: bytes, content_type: str = OCTETS) -> ObjectInfo:
        md5 = hashlib.md5(data, usedforsecurity=False)
        response = self._call(
            "PUT", key, self.client.put_object, Key=self._key(key), Body=data, ContentType=content_type
        )
        return ObjectInfo(key, len(data), response.get("ETag", md5.hexdigest()).strip('"'))

    def put_file(self, key: str, path: Path, content_type: str = OCTETS, *, consume: bool = False) -> ObjectInfo:
        # One PUT up to 5 GiB keeps the object atomic and its ETag a content MD5; botocore rewinds the
        # (seekable) file before each retry.
        with path.open("rb") as f:
            response = self._call(
                "PUT", key, self.client.put_object, rewind=f, Key=self._key(key), Body=f, ContentType=content_type
            )
        return ObjectInfo(key, path.stat().st_size, response.get("ETag", "").strip('"'))

    def open(self, key: str) -> IO[bytes]:
        response = self._call("GET", key, self.client.get_object, Key=self._key(key))
        return io.BufferedReader(_ResumingBody(self, key, response), buffer_size=1 << 20)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        byte_range = f"bytes={start}-{start + length - 1}"
        for attempt in range(READ_RESUMES + 1):
            response = self._call("GET", key, self.client.get_object, Key=self._key(key), Range=byte_range)
            try:
                data: bytes = response["Body"].read()
                return data
            except _stream_errors() as exc:
                if attempt == READ_RESUMES:
                    where = f"{self.uri(key)} ({byte_range})"
                    raise ObjectStoreError(f"S3 GET of {where} kept breaking off: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        _check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        token: dict[str, Any] = {}
        while True:  # page by page, so a page that fails is retried alone
            page = self._call("LIST", "", self.client.list_objects_v2, Prefix=full, MaxKeys=1000, **token)
            for item in page.get("Contents", []):
                yield ObjectInfo(self._relative(item["Key"]), item["Size"], item["ETag"].strip('"'))
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            item = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ObjectStoreError(f"S3 HEAD failed for {self.uri(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise ObjectStoreError(f"S3 HEAD failed for {self.uri(key)}: {exc}") from exc
        return ObjectInfo(key, item["ContentLength"], item["ETag"].strip('"'))

    def delete(self, key: str) -> None:
        self._call("DELETE", key, self.client.delete_object, Key=self._key(key))


def _broken_response_errors() -> tuple[type[BaseException], ...]:
    """What botocore lets through when a response body breaks off before it has parsed it."""
    import http.client

    import urllib3.exceptions

    return (urllib3.exceptions.HTTPError, http.client.HTTPException)


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a response body raises when the connection breaks off mid-read."""
    import http.client

    import urllib3.exceptions
    from botocore.exceptions import BotoCoreError

    return (BotoCoreError, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class _ResumingBody(io.RawIOBase):
    """An S3 object body that, when the connection drops mid-body, re-requests the rest by byte range.

    The follow-up GETs carry If-Match with the first response's ETag, so a resumed read can never splice
    two versions of an object together.
    """

    def __init__(self, store: S3Store, key: str, response: dict[str, Any]):
        self.store, self.key = store, key
        self.body = response["Body"]
        self.etag = response.get("ETag")
        self.length = response.get("ContentLength")
        self.pos = 0
        self.resumes_left = READ_RESUMES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            try:
                data = self.body.read(len(view))
            except _stream_errors() as exc:
                self._resume(exc)
                continue
            if not data and self.length is not None and self.pos < self.length:
                self._resume(EOFError(f"body ended at byte {self.pos} of {self.length}"))
                continue
            view[: len(data)] = data
            self.pos += len(data)
            return len(data)

    def _resume(self, exc: BaseException) -> None:
        if self.resumes_left <= 0:
            raise ObjectStoreError(f"S3 GET of {self.store.uri(self.key)} kept breaking off: {exc}") from exc
        self.resumes_left -= 1
        self._close_body()
        extra = {"IfMatch": self.etag} if self.etag else {}
        response = self.store._call(
            "GET",
            self.key,
            self.store.client.get_object,
            Key=self.store._key(self.key),
            Range=f"bytes={self.pos}-",
            **extra,
        )
        self.body = response["Body"]

    def _close_body(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is discarded
            self.body.close()

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()
