"""The local folder backend beyond the ObjectStore contract (test_store.py): its private temporary folder,
its URIs, and the staged writer that shows a new folder's late objects together."""

from __future__ import annotations

import hashlib
import threading

import pytest

from geospatial_pipeline.lake.local_store import LOCAL_TMP_DIR, LocalStore


def test_local_put_many_keeps_its_temporary_folder_private(tmp_path):
    store = LocalStore(tmp_path / "lake")
    with pytest.raises(ValueError):
        store.put_many([(f"{LOCAL_TMP_DIR}/x.txt", b"x", "text/plain")])
    store.put_many([("a/b.txt", b"x", "text/plain")] * 3)
    assert list((tmp_path / "lake" / LOCAL_TMP_DIR).iterdir()) == []  # every temporary file renamed away


def test_local_store_uri_and_root(tmp_path):
    store = LocalStore(tmp_path / "lake")
    assert store.uri("raw/2025-01-01/") == (tmp_path / "lake" / "raw" / "2025-01-01").as_uri() + "/"


# --- the local folder's staged writer: late objects of a new folder appear together -----------------------


def test_staged_objects_of_a_new_folder_appear_together_when_published(tmp_path):
    store = LocalStore(tmp_path / "lake")
    writer = store.staged_writer()
    items = [(f"late_data/2025-01-01/F-{j}.geojson", f"body {j}".encode(), "application/geo+json") for j in range(5)]
    infos = writer.put_many(items[:3], etags=False) + writer.put_many(items[3:])
    assert [(i.key, i.size) for i in infos] == [(k, len(b)) for k, b, _ in items]
    assert infos[-1].etag == hashlib.sha256(items[-1][1]).hexdigest()  # the local etag
    assert list(store.list("")) == [] and not (tmp_path / "lake" / "late_data").exists()  # nothing shows yet
    writer.publish()
    assert {k: store.get_bytes(k) for k, _, _ in items} == {k: b for k, b, _ in items}
    assert sorted(i.key for i in store.list("")) == sorted(k for k, _, _ in items)
    assert not any((tmp_path / "lake" / LOCAL_TMP_DIR).iterdir())  # the staging folder went with the rename


def test_staged_writer_puts_into_an_existing_folder_at_once(tmp_path):
    store = LocalStore(tmp_path / "lake")
    store.put_bytes("late_data/2025-01-01/F-0.geojson", b"old")
    writer = store.staged_writer()
    writer.put_many(
        [("late_data/2025-01-01/F-0.geojson", b"new", "x"), ("late_data/2025-01-01/F-1.geojson", b"1", "x")]
    )
    assert store.get_bytes("late_data/2025-01-01/F-0.geojson") == b"new"  # before publish: an ordinary put
    writer.publish()
    assert {i.key for i in store.list("")} == {"late_data/2025-01-01/F-0.geojson", "late_data/2025-01-01/F-1.geojson"}


def test_a_staged_folder_that_appeared_meanwhile_is_moved_object_by_object(tmp_path):
    store = LocalStore(tmp_path / "lake")
    writer = store.staged_writer()
    writer.put_many([("late_data/D/a.txt", b"staged a", "x"), ("late_data/D/b.txt", b"staged b", "x")])
    writer.put_many([("late_data/D/a.txt", b"staged a, again", "x")])  # the later put of a key wins
    store.put_bytes("late_data/D/b.txt", b"another run's b")  # the folder appears before publish
    store.put_bytes("late_data/D/c.txt", b"another run's c")
    writer.publish()
    got = {i.key: store.get_bytes(i.key) for i in store.list("")}
    assert got == {
        "late_data/D/a.txt": b"staged a, again",
        "late_data/D/b.txt": b"staged b",
        "late_data/D/c.txt": b"another run's c",
    }
    assert not any((tmp_path / "lake" / LOCAL_TMP_DIR).iterdir())


def test_discarded_staged_objects_never_show_and_leave_nothing_behind(tmp_path):
    store = LocalStore(tmp_path / "lake")
    writer = store.staged_writer()
    writer.put_many([("late_data/D/a.txt", b"a", "x")])
    writer.discard()
    writer.publish()  # nothing left to show
    assert list(store.list("")) == [] and not any((tmp_path / "lake" / LOCAL_TMP_DIR).iterdir())


@pytest.mark.parametrize("bad", ["../escape", "a//b", "late_data/../../x", f"{LOCAL_TMP_DIR}/x.txt", "late_data/D/"])
def test_the_staged_writer_refuses_unsafe_keys_before_writing_any(tmp_path, bad):
    store = LocalStore(tmp_path / "lake")
    writer = store.staged_writer()
    with pytest.raises(ValueError):
        writer.put_many([("late_data/D/fine.txt", b"x", "x"), (bad, b"x", "x")])
    writer.publish()
    assert list(store.list("")) == []


def test_two_threads_stage_into_one_writer(tmp_path):
    store = LocalStore(tmp_path / "lake")
    writer = store.staged_writer()
    batches = [
        [(f"late_data/2025-01-0{1 + t}/F-{t}-{j}.txt", f"{t} {j}".encode(), "x") for j in range(50)] for t in range(2)
    ]
    batches.append([(f"late_data/2025-01-01/G-{j}.txt", b"g", "x") for j in range(50)])
    threads = [threading.Thread(target=writer.put_many, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.publish()
    assert {i.key for i in store.list("")} == {k for batch in batches for k, _, _ in batch}
