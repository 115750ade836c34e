"""The lake as a folder on disk, laid out exactly like the bucket (the default backend)."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from geospatial_pipeline.lake.keys import UnsafeKeyError, segment
from geospatial_pipeline.lake.store import (
    OCTETS,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    StagedWriter,
    checked_key,
    checked_prefix,
    in_pool,
)

# Local temporary files live here, outside every key the lake can name.
LOCAL_TMP_DIR = ".lake-tmp"
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
        checked_key(key)
        if key.split("/", 1)[0] == LOCAL_TMP_DIR:
            raise UnsafeKeyError(f"{LOCAL_TMP_DIR}/ is reserved for the store's temporary files: {key!r}")
        return self.root / key

    def _tmp_file(self, suffix: str) -> tuple[int, str]:
        tmp_dir = self.root / LOCAL_TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=suffix)

    def uri(self, key: str) -> str:
        path = self.root / checked_key(key, prefix_ok=True)
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

        return in_pool(len(items), min(concurrency, LOCAL_PUT_THREADS), put)

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
                checked_key(rel)
            except UnsafeKeyError:
                size = -1
            yield ObjectInfo(rel, size, "") if size >= SHALLOW_MIN_BYTES else self._info(rel, path)

    def _keys_under(self, prefix: str) -> builtins.list[str]:
        checked_prefix(prefix)
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
