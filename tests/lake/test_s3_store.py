"""The S3 backend beyond the ObjectStore contract (test_store.py): keys live under the store's prefix.
Reads that resume, retries and faults: tests/reliability/test_reliability_s3_faults.py."""

from __future__ import annotations

from geospatial_pipeline.lake.s3_store import S3Store
from tests.conftest import use_fake_aws


def test_s3_keys_live_under_the_prefix(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    use_fake_aws(monkeypatch)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bucket-one")
        client.put_object(Bucket="bucket-one", Key="other/secret.txt", Body=b"not ours")
        store = S3Store(client, "bucket-one", "/team/lake/")
        store.put_bytes("manifests/2025-01-01.json", b"{}")
        raw = [o["Key"] for o in client.list_objects_v2(Bucket="bucket-one")["Contents"]]
        assert sorted(raw) == ["other/secret.txt", "team/lake/manifests/2025-01-01.json"]
        assert [i.key for i in store.list("")] == ["manifests/2025-01-01.json"]
        assert store.uri("manifests/2025-01-01.json") == "s3://bucket-one/team/lake/manifests/2025-01-01.json"
