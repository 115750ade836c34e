"""The lake under s3://bucket/prefix/: the only module that talks to boto3 (its client comes from
dagster-aws's S3Resource in the Dagster shell). S3 reads resume (by byte range, pinned to the ETag) when a
connection drops mid-body, which botocore's request retries do not cover.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from geospatial_pipeline.lake.store import (
    OCTETS,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    checked_key,
    checked_prefix,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Times an S3 read resumes after the body broke off, per object opened.
READ_RESUMES = 5


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
            checked_key(self.prefix)

    def _key(self, key: str, prefix_ok: bool = False) -> str:
        key = checked_key(key, prefix_ok)
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
        checked_prefix(prefix)
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
