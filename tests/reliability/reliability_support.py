"""Helpers for the reliability tests: running partitions, comparing lake states, injecting faults.

Kept out of conftest.py so the fault-injecting pieces can be imported by a child process too.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import OUTCOMES, PartitionReport, run_partition
from geospatial_pipeline.lake.store import OCTETS, ObjectStore, StagedWriter
from geospatial_pipeline.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
FIXTURE_DATES = ["2025-01-01", "2025-01-02", "2025-01-03"]
# A fixed clock: classification never depends on when the test happens to run.
NOW = dt.datetime(2025, 1, 10, 12, tzinfo=dt.UTC)

# Manifest members that describe the data; everything else (run id, completion time, which batches a
# previous run had merged, URIs that name the lake's location) is run metadata.
MANIFEST_DATA_KEYS = (
    "partition",
    "config_digest",
    "inputs",
    "counts",
    "reasons",
    "late_by_intended_date",
    "bbox",
)


def run(store: ObjectStore, date: str, settings: PipelineSettings, now: dt.datetime = NOW) -> PartitionReport:
    return run_partition(
        store,
        dt.date.fromisoformat(date),
        settings.rules(),
        target_crs=settings.target_crs,
        limits=settings.limits(),
        config_digest="reliability-tests",  # the same for any lake location, so lakes compare equal
        run_id="test",
        now=now,
    )


def seed_raw(root: Path) -> Path:
    """A local lake holding the fixture landing batches."""
    shutil.copytree(FIXTURES / "raw", root / "raw")
    return root


def normalised_manifest(body: bytes) -> dict:
    manifest = orjson.loads(body)
    out = {k: manifest.get(k) for k in MANIFEST_DATA_KEYS}
    out["merged_late_batches"] = sorted(
        (b["key"], b["etag"], b["rows"]) for b in manifest.get("merged_late_batches", [])
    )
    outputs = manifest.get("outputs", {})
    out["outputs"] = {
        "fields": _object_ref(outputs.get("fields")),
        "rejected": _object_ref(outputs.get("rejected")),
        "late_batches": sorted(_object_ref(b) for b in outputs.get("late_batches", [])),
        "late_objects": outputs.get("late_objects"),
    }
    return out


def _object_ref(ref: dict | None) -> tuple | None:
    return None if ref is None else (ref["key"], ref["size"], ref["etag"])


def lake_state(store: ObjectStore) -> dict[str, object]:
    """Every object of the lake: bytes, except manifests, which are compared without run metadata."""
    state: dict[str, object] = {}
    for info in store.list(""):
        body = store.get_bytes(info.key)
        state[info.key] = normalised_manifest(body) if info.key.startswith("manifests/") else body
    return state


def diff_states(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two lake states (empty when equal)."""
    out = [f"only in first: {k}" for k in sorted(a.keys() - b.keys())]
    out += [f"only in second: {k}" for k in sorted(b.keys() - a.keys())]
    out += [f"differs: {k}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    return out


def manifest_references(manifest: dict) -> list[tuple[str, str]]:
    """(key, etag) of every object a manifest points at."""
    outputs = manifest["outputs"]
    refs = [(outputs[name]["key"], outputs[name]["etag"]) for name in ("fields", "rejected")]
    refs += [(b["key"], b["etag"]) for b in outputs.get("late_batches", [])]
    refs += [(b["key"], b["etag"]) for b in manifest.get("merged_late_batches", [])]
    return refs


def assert_reader_view_consistent(store: ObjectStore, *, etags: bool = True) -> int:
    """What a reader can see at any instant: whole objects only, and manifests that point at objects
    that exist (with the recorded content, unless `etags` is off). Returns the number of objects checked."""
    seen = 0
    for info in store.list(""):
        seen += 1
        body = store.get_bytes(info.key)
        if info.key.endswith(".parquet"):
            pq.read_table(pa.BufferReader(body))
        elif info.key.endswith((".json", ".geojson")) and not info.key.startswith("raw/"):
            json.loads(body)
        elif info.key.endswith(".geojsonl") and info.key.startswith("rejected/"):
            for line in body.splitlines():
                json.loads(line)
        if info.key.startswith("manifests/"):
            manifest = json.loads(body)
            for key, etag in manifest_references(manifest):
                found = store.head(key)
                assert found is not None, f"{info.key} points at missing {key}"
                assert not etags or found.etag == etag, f"{info.key} names {key} with etag {etag}: {found.etag}"
    return seen


def outcome_total(counts: dict) -> int:
    return sum(counts[k] for k in OUTCOMES)


def manifest_of(store: ObjectStore, date: str) -> dict | None:
    key = keys.manifest_key(date)
    return orjson.loads(store.get_bytes(key)) if store.head(key) is not None else None


# --- crashes -------------------------------------------------------------------------------------------


class InjectedCrash(BaseException):
    """Stands for the process dying: a BaseException, so no `except Exception` in the code swallows it."""


class CrashingStore(LocalStore):
    """A LocalStore whose process 'dies' just before a chosen write; after that every write fails too.

    `written` lists the keys whose writes started (a write in flight when the crash hits completes, as
    a PUT already sent would)."""

    def __init__(self, root: Path, crash_before: Callable[[str, list[str]], bool]):
        super().__init__(root)
        self.crash_before = crash_before
        self.written: list[str] = []
        self.dead = False
        self._lock = threading.Lock()

    def _gate(self, key: str) -> None:
        """Writes are counted as they start, so concurrent late-object PUTs see each other."""
        with self._lock:
            if self.dead or self.crash_before(key, self.written):
                self.dead = True
                raise InjectedCrash(f"killed before writing {key}")
            self.written.append(key)

    def put_bytes(self, key, data, content_type=OCTETS):
        self._gate(key)
        return super().put_bytes(key, data, content_type)

    def put_file(self, key, path, content_type=OCTETS, **options):
        self._gate(key)
        return super().put_file(key, path, content_type, **options)

    def put_many(self, items, concurrency=16, **options):
        # One gated put_bytes per object (the generic pool), so the crash can fall between two of them.
        return ObjectStore.put_many(self, items, concurrency, **options)

    def staged_writer(self):
        # Every late object through the gated puts above, one at a time (no staging folder to skip them).
        return StagedWriter(self)


def is_late_object(key: str) -> bool:
    return key.startswith("late_data/") and not key.startswith(keys.LATE_BATCHES_PREFIX)


# Each write step of a partition run, as "crash just before the first write that matches".
CRASH_POINTS: dict[str, Callable[[str, list[str]], bool]] = {
    "after_some_late_objects": lambda key, done: is_late_object(key) and sum(map(is_late_object, done)) >= 1,
    "before_late_batch": lambda key, done: key.startswith(keys.LATE_BATCHES_PREFIX),
    "before_quarantine": lambda key, done: key.startswith("rejected/"),
    "before_geoparquet": lambda key, done: key.startswith("fields/"),
    "before_manifest": lambda key, done: key.startswith("manifests/"),
}


# --- S3 faults -----------------------------------------------------------------------------------------

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}
ALL_FAULTS = ("500", "503", "slowdown", "drop_before", "drop_after", "truncate")


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of an S3 endpoint that fails a seeded share of requests.

    Faults: S3 error responses (500 InternalError, 503 ServiceUnavailable, 503 SlowDown), a connection
    closed before the request is forwarded, one closed after the upstream applied it (the response is
    lost), and a GET body cut off halfway. `methods` limits faults to those HTTP methods.
    """

    def __init__(
        self,
        upstream: str,
        share: float,
        seed: int = 0,
        faults: tuple[str, ...] = ALL_FAULTS,
        methods: frozenset[str] | None = None,
    ):
        host, port = upstream.removeprefix("http://").rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.share = share
        self.faults = faults
        self.methods = methods
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter = Counter()
        self.requests: Counter = Counter()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FaultProxy:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.daemon_threads = True
        self.server.proxy = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self.server is not None and self.thread is not None
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def decide(self, method: str) -> str | None:
        with self.lock:
            self.requests[method] += 1
            if self.methods is not None and method not in self.methods:
                return None
            if self.rng.random() >= self.share:
                return None
            choices = [f for f in self.faults if f != "truncate" or method == "GET"]
            if not choices:
                return None
            # Whether to fail is random; which fault is the least used one, so every kind gets its turn.
            fault = min(choices, key=lambda f: (self.injected[f], self.faults.index(f)))
            self.injected[fault] += 1
            return fault


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self._relay()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _relay(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._read_body()
        fault = proxy.decide(self.command)
        if fault in _ERRORS:
            status, code, message = _ERRORS[fault]
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                "<RequestId>FAULTPROXY</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault == "drop_before":
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            response_headers = response.getheaders()
            status, reason = response.status, response.reason
        finally:
            upstream.close()
        if fault == "drop_after":  # the upstream applied the request; its answer is lost
            self.close_connection = True
            return
        self.send_response(status, reason)
        length = None
        for name, value in response_headers:
            low = name.lower()
            if low == "content-length":
                length = value
            elif low not in _HOP_BY_HOP and low not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command == "HEAD" or not data:
            return
        if fault == "truncate" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)
