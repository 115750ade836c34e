"""The lake resource: a local folder without a bucket, S3 through dagster-aws's S3Resource with one.

S3 is moto's HTTP server on 127.0.0.1; the clients are real boto3 clients sending real requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from dagster_aws.s3 import S3Resource

from geospatial_pipeline.defs.resources import LakeResource, lake_resource
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.settings import load_settings
from tests.conftest import use_fake_aws
from tests.integration.lake_backends import moto_http_server

BUCKET = "lake-resource-test"


@pytest.fixture
def moto_endpoint(monkeypatch) -> Iterator[str]:
    use_fake_aws(monkeypatch)
    with moto_http_server() as endpoint:
        boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


def test_without_a_bucket_the_lake_is_the_local_folder(tmp_path: Path):
    store = lake_resource(load_settings(local_lake_path=tmp_path / "lake")).store()
    assert isinstance(store, LocalStore)
    store.put_bytes("manifests/2025-01-01.json", b"{}")
    assert (tmp_path / "lake" / "manifests" / "2025-01-01.json").read_bytes() == b"{}"


def test_with_a_bucket_objects_land_under_the_prefix_in_s3(moto_endpoint: str):
    settings = load_settings(
        s3_bucket=BUCKET, s3_prefix="pipelines/fields", s3_region="us-east-1", s3_endpoint_url=moto_endpoint
    )
    store = lake_resource(settings).store()
    assert isinstance(store, S3Store)
    store.put_bytes("manifests/2025-01-01.json", b"{}")
    plain = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    body = plain.get_object(Bucket=BUCKET, Key="pipelines/fields/manifests/2025-01-01.json")["Body"].read()
    assert body == b"{}"
    assert store.uri("manifests/2025-01-01.json") == f"s3://{BUCKET}/pipelines/fields/manifests/2025-01-01.json"


def test_the_client_takes_retries_and_pool_from_the_settings(monkeypatch):
    use_fake_aws(monkeypatch)
    settings = load_settings(
        s3_bucket=BUCKET,
        s3_region="eu-central-1",
        s3_retry_mode="adaptive",
        s3_max_attempts=4,
        s3_max_pool_connections=32,
    )
    config = lake_resource(settings).s3_client().meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert config.max_pool_connections == 32
    assert (config.connect_timeout, config.read_timeout) == (10, 60)
    assert config.region_name == "eu-central-1"


def _authorization_headers(resource: LakeResource) -> list[bytes | None]:
    """The Authorization header of each request a listing sends through the resource's client."""
    client = resource.s3_client()
    sent: list[bytes | None] = []
    client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request.headers.get("Authorization"))
    )
    client.list_objects_v2(Bucket=BUCKET)
    return sent


def test_an_unsigned_session_sends_unsigned_requests(moto_endpoint: str):
    """dagster-aws's `use_unsigned_session` (public buckets); the resource this one replaced dropped it."""
    signed = LakeResource(s3=S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1"), bucket=BUCKET)
    unsigned = LakeResource(
        s3=S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1", use_unsigned_session=True), bucket=BUCKET
    )
    assert [h is not None and h.startswith(b"AWS4-HMAC-SHA256") for h in _authorization_headers(signed)] == [True]
    assert _authorization_headers(unsigned) == [None]


def test_a_named_profile_supplies_the_credentials(tmp_path: Path, monkeypatch):
    use_fake_aws(monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text("[lake-test]\naws_access_key_id = from-profile\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    client = LakeResource(s3=S3Resource(profile_name="lake-test", region_name="us-east-1")).s3_client()
    assert client._request_signer._credentials.access_key == "from-profile"


# How each field of dagster-aws's S3Resource shows on the client LakeResource builds: a non-default value
# and what it must change. A field dagster-aws adds later fails the test below until it is passed on.
def _credentials(client: Any) -> tuple[str, str, str | None]:
    c = client._request_signer._credentials
    return c.access_key, c.secret_key, c.token


FIELD_EFFECTS: dict[str, tuple[Any, Any]] = {
    "use_unsigned_session": (True, lambda c: c.meta.config.signature_version is UNSIGNED),
    "region_name": ("ap-south-1", lambda c: c.meta.region_name == "ap-south-1"),
    "endpoint_url": ("http://127.0.0.1:9", lambda c: c.meta.endpoint_url == "http://127.0.0.1:9"),
    "max_attempts": (2, lambda c: c.meta.config.retries["total_max_attempts"] == 2),
    "use_ssl": (False, lambda c: c.meta.endpoint_url.startswith("http://")),
    "verify": (False, lambda c: c._endpoint.http_session._verify is False),
    "aws_access_key_id": ("AKIDFIELD", lambda c: _credentials(c)[0] == "AKIDFIELD"),
    "aws_secret_access_key": ("field-secret", lambda c: _credentials(c)[1] == "field-secret"),
    "aws_session_token": ("field-token", lambda c: _credentials(c)[2] == "field-token"),
    # profile_name: test_a_named_profile_supplies_the_credentials (it needs a profile to exist).
    "profile_name": (None, lambda c: True),
}


@pytest.mark.parametrize("field", sorted(S3Resource.model_fields))
def test_every_s3_resource_field_reaches_the_client(field: str, monkeypatch):
    use_fake_aws(monkeypatch)
    assert field in FIELD_EFFECTS, f"S3Resource has a new field {field!r}: LakeResource.s3_client must pass it on"
    value, effect = FIELD_EFFECTS[field]
    base = {"region_name": "us-east-1", "aws_access_key_id": "AKIDBASE", "aws_secret_access_key": "base"}
    default = LakeResource(s3=S3Resource(**base)).s3_client()
    changed = LakeResource(s3=S3Resource(**(base | {field: value}))).s3_client()
    assert effect(changed)
    if field != "profile_name":
        assert not effect(default), f"{field}: the default client already shows the effect; the test proves nothing"
