"""Lake backends for integration tests: a local folder, in-process moto, and moto's HTTP server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import boto3

from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.lake.store import ObjectStore
from tests.conftest import use_fake_aws

BUCKET = "geo-test-data"
PREFIX = "pipelines/fields"


def upload_tree(store: ObjectStore, root: Path, under: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            store.put_bytes(f"{under}/{path.relative_to(root).as_posix()}", path.read_bytes())


@contextlib.contextmanager
def moto_http_server() -> Iterator[str]:
    """moto's real HTTP S3 server on 127.0.0.1 at a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str | None = None):
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)


@contextlib.contextmanager
def backend(kind: str, tmp_path: Path, monkeypatch) -> Iterator[tuple[dict, ObjectStore]]:
    """Yields (settings overrides, a store on the same lake for reading results back)."""
    if kind == "local":
        lake = tmp_path / "lake"
        yield {"local_lake_path": lake}, LocalStore(lake)
        return
    use_fake_aws(monkeypatch)
    overrides = {"s3_bucket": BUCKET, "s3_prefix": PREFIX, "s3_region": "us-east-1"}
    if kind == "mock_aws":
        from moto import mock_aws

        with mock_aws():
            client = s3_client()
            client.create_bucket(Bucket=BUCKET)
            yield overrides, S3Store(client, BUCKET, PREFIX)
        return
    with moto_http_server() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield overrides | {"s3_endpoint_url": endpoint}, S3Store(client, BUCKET, PREFIX)
