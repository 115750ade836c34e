"""ObjectStore: the one small interface to the lake, with a local-folder and an S3 backend.

No other module talks to boto3. Writes are atomic per object on both backends: S3 PUTs are, and the
local backend writes a temporary file and renames it, so a reader never sees half an object.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from geospatial_pipeline.lake.keys import segment


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the lake root
    size: int
    etag: str  # content hash where the backend offers one


class ObjectStoreError(RuntimeError):
    """A storage operation failed after the backend's own retries."""


def _check_relative(key: str, prefix_ok: bool = False) -> str:
    """Keys are relative and normalised: the store's prefix is the only root they can name."""
    body = key[:-1] if prefix_ok and key.endswith("/") else key
    if body.startswith("/") or body.endswith("/"):
        raise ValueError(f"object key must be relative and name an object: {key!r}")
    for part in body.split("/"):
        segment(part)
    return key


class ObjectStore(ABC):
    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo: ...

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo: ...

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

    def open_seekable(self, key: str) -> IO[bytes]:
        """A seekable reader fetching byte ranges on demand: Parquet footers without the whole file."""
        info = self.head(key)
        if info is None:
            raise ObjectStoreError(f"no such object: {self.uri(key)}")
        return io.BufferedReader(_RangeReader(self, key, info.size), buffer_size=1 << 20)


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

    def readinto(self, buffer) -> int:
        length = min(len(buffer), self.size - self.pos)
        if length <= 0:
            return 0
        data = self.store.read_range(self.key, self.pos, length)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


class LocalStore(ObjectStore):
    """A folder on disk laid out exactly like the bucket."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root / _check_relative(key)

    def uri(self, key: str) -> str:
        return (self.root / _check_relative(key, prefix_ok=True)).as_uri() + ("/" if key.endswith("/") else "")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ObjectInfo(key, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
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
        except FileNotFoundError:
            raise ObjectStoreError(f"no such object: {self.uri(key)}") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix.rstrip("/") if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".tmp-")]
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    found.append(rel)
        for rel in sorted(found):
            yield self._info(rel, self.root / rel)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key) as f:
            f.seek(start)
            return f.read(length)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return self._info(key, path) if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    @staticmethod
    def _info(key: str, path: Path) -> ObjectInfo:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return ObjectInfo(key, path.stat().st_size, digest.hexdigest())


class S3Store(ObjectStore):
    """s3://bucket/prefix/ through a boto3 client (built by dagster-aws's S3Resource in the shell)."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str, prefix_ok: bool = False) -> str:
        key = _check_relative(key, prefix_ok)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key, prefix_ok=True)}"

    def _call(self, what: str, key: str, fn, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise ObjectStoreError(f"S3 {what} failed for {self.uri(key) if key else self.bucket}: {exc}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        md5 = hashlib.md5(data, usedforsecurity=False)
        response = self._call(
            "PUT", key, self.client.put_object, Key=self._key(key), Body=data, ContentType=content_type
        )
        return ObjectInfo(key, len(data), response.get("ETag", md5.hexdigest()).strip('"'))

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo:
        # One PUT up to 5 GiB keeps the object atomic and its ETag a content MD5.
        with path.open("rb") as f:
            response = self._call(
                "PUT", key, self.client.put_object, Key=self._key(key), Body=f, ContentType=content_type
            )
        return ObjectInfo(key, path.stat().st_size, response.get("ETag", "").strip('"'))

    def open(self, key: str) -> IO[bytes]:
        response = self._call("GET", key, self.client.get_object, Key=self._key(key))
        return response["Body"]

    def read_range(self, key: str, start: int, length: int) -> bytes:
        byte_range = f"bytes={start}-{start + length - 1}"
        response = self._call("GET", key, self.client.get_object, Key=self._key(key), Range=byte_range)
        return response["Body"].read()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        from botocore.exceptions import BotoCoreError, ClientError

        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": 1000}):
                for item in page.get("Contents", []):
                    yield ObjectInfo(self._relative(item["Key"]), item["Size"], item["ETag"].strip('"'))
        except (ClientError, BotoCoreError) as exc:
            raise ObjectStoreError(f"S3 LIST failed for s3://{self.bucket}/{full}: {exc}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            item = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ObjectStoreError(f"S3 HEAD failed for {self.uri(key)}: {exc}") from exc
        return ObjectInfo(key, item["ContentLength"], item["ETag"].strip('"'))

    def delete(self, key: str) -> None:
        self._call("DELETE", key, self.client.delete_object, Key=self._key(key))
