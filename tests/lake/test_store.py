"""The ObjectStore contract, identical on the local folder and on S3 (in-process moto)."""

from __future__ import annotations

import hashlib

import pytest

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.lake.store import ObjectStoreError
from tests.conftest import use_fake_aws


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        yield LocalStore(tmp_path / "lake")
        return
    import boto3
    from moto import mock_aws

    use_fake_aws(monkeypatch)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake-bucket")
        yield S3Store(client, "lake-bucket", "team/lake")


def content_etag(store, data: bytes) -> str:
    """S3's etag of a single-part object is its MD5; the local folder's is the SHA-256."""
    return (hashlib.sha256 if isinstance(store, LocalStore) else hashlib.md5)(data).hexdigest()


def test_put_get_head_delete(store):
    info = store.put_bytes("a/b/c.txt", b"hello", "text/plain")
    assert info.size == 5 and info.etag == content_etag(store, b"hello")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    assert store.head("a/b/c.txt").etag == info.etag
    assert store.read_range("a/b/c.txt", 1, 3) == b"ell"
    store.delete("a/b/c.txt")
    assert store.head("a/b/c.txt") is None
    with pytest.raises(ObjectStoreError):
        store.get_bytes("a/b/c.txt")


def test_put_file_and_seekable_reads(store, tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(bytes(range(256)) * 100)
    info = store.put_file("blobs/blob.bin", source)
    assert info.size == 25_600
    with store.open_seekable("blobs/blob.bin") as f:
        f.seek(-4, 2)
        assert f.read() == bytes([252, 253, 254, 255])
        f.seek(256)
        assert f.read(2) == b"\x00\x01"


def test_a_consumed_file_becomes_the_object(store, tmp_path):
    source = tmp_path / "fields.parquet"
    source.write_bytes(b"p" * 5000)
    info = store.put_file("fields/date=2025-01-01/fields.parquet", source, consume=True)
    assert info.size == 5000 and info.etag == content_etag(store, b"p" * 5000)
    assert store.get_bytes("fields/date=2025-01-01/fields.parquet") == b"p" * 5000
    if isinstance(store, LocalStore):  # same file system: moved, not copied
        assert not source.exists()


def test_listing_is_recursive_sorted_and_prefix_bound(store):
    for key in [
        "late_data/_batches/2025-01-02/2025-01-03.parquet",
        "late_data/_batches/2025-01-01/2025-01-02.parquet",
        "late_data/2025-01-01/F-1.txt",
        "manifests/2025-01-01.json",
    ]:
        store.put_bytes(key, key.encode())
    listed = [i.key for i in store.list(keys.LATE_BATCHES_PREFIX)]
    assert listed == [
        "late_data/_batches/2025-01-01/2025-01-02.parquet",
        "late_data/_batches/2025-01-02/2025-01-03.parquet",
    ]
    assert [i.key for i in store.list("nothing/here/")] == []
    assert all(i.etag == content_etag(store, i.key.encode()) for i in store.list(""))


def test_overwrite_replaces_whole_object_with_no_leftovers(store, tmp_path):
    store.put_bytes("x/y.bin", b"1" * 1000)
    store.put_bytes("x/y.bin", b"2" * 10)
    assert store.get_bytes("x/y.bin") == b"2" * 10
    assert [i.key for i in store.list("x/")] == ["x/y.bin"]  # no temporary files visible


@pytest.mark.parametrize("bad", ["../escape", "/abs/key", "a//b", "a/./b", "a/../../b", "trailing/", "ctl\x00"])
def test_keys_that_could_escape_are_refused(store, bad):
    with pytest.raises(ValueError):
        store.put_bytes(bad, b"x")


def test_etag_hash_of_the_bytes_is_the_etag_a_shallow_listing_leaves_out(store):
    body = bytes(range(256)) * 8192  # 2 MiB: at least SHALLOW_MIN_BYTES, so the local listing leaves it out
    store.put_bytes("raw/2025-01-01/big.geojsonl", body)
    (shallow,) = store.list_shallow("raw/2025-01-01/")
    digest = store.etag_hash()
    digest.update(body)
    assert digest.hexdigest() == store.head(shallow.key).etag == content_etag(store, body)
    assert shallow.etag in ("", digest.hexdigest())


def test_put_many_writes_every_object_in_order(store):
    items = [(f"late_data/2025-01-0{1 + j % 3}/F-{j}.txt", f"body {j}".encode(), "text/plain") for j in range(40)]
    infos = store.put_many(items, concurrency=4)
    assert [i.key for i in infos] == [k for k, _, _ in items]
    for info, (_, body, _) in zip(infos, items, strict=True):
        assert info.etag == content_etag(store, body) and info.size == len(body)
    assert {k: store.get_bytes(k) for k, _, _ in items} == {k: body for k, body, _ in items}
    assert sorted(i.key for i in store.list("late_data/")) == sorted(k for k, _, _ in items)  # nothing else


def test_put_many_without_etags_writes_the_same_objects(store):
    items = [(f"late_data/2025-01-01/F-{j}.geojson", f"body {j}".encode(), "application/geo+json") for j in range(9)]
    infos = store.put_many(items, concurrency=4, etags=False)
    assert [(i.key, i.size) for i in infos] == [(k, len(body)) for k, body, _ in items]
    assert all(i.etag in ("", content_etag(store, body)) for i, (_, body, _) in zip(infos, items, strict=True))
    assert {i.key: i.etag for i in store.list("late_data/")} == {k: content_etag(store, b) for k, b, _ in items}


@pytest.mark.parametrize(
    "bad", ["../escape", "/abs/key", "a//b", "a/./b", "a/../../b", "trailing/", "ctl\x00", "ok/../x", "ok/", "ok/a\\b"]
)
def test_put_many_refuses_every_unsafe_key_even_after_a_safe_one_in_its_folder(store, bad):
    with pytest.raises(ValueError):
        store.put_many([("ok/fine.txt", b"x", "text/plain"), (bad, b"x", "text/plain")])
