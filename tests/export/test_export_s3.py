"""`--lake s3://bucket/prefix` against moto's S3 server on 127.0.0.1: the export reads through the pipeline's
own store (its retry settings, the default credential chain) and writes what the local export writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyogrio
import pytest
import yaml

from geospatial_pipeline.export.cli import main, open_lake
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.s3_store import S3Store
from tests.conftest import FIXTURE_DATES
from tests.export import readme_snippets as snippets
from tests.export.lakes import fixture_lake, settings_for
from tests.integration.lake_backends import BUCKET, PREFIX, backend

pytestmark = pytest.mark.slow
RANGE = ["--from", FIXTURE_DATES[0], "--to", FIXTURE_DATES[-1]]


@pytest.fixture
def s3_lake(tmp_path, monkeypatch):
    """The fixture days published into moto's server; yields (store, a config file naming its endpoint)."""
    with backend("moto_server", tmp_path, monkeypatch) as (overrides, store):
        fixture_lake(store, settings_for(**overrides))
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {"s3_endpoint_url": overrides["s3_endpoint_url"], "s3_region": "us-east-1", "s3_max_attempts": 3}
            )
        )
        yield store, config


def test_s3_export_equals_the_local_export_of_the_same_days(s3_lake, published_lake, tmp_path):
    store, config = s3_lake
    from_s3, local = tmp_path / "s3.gpkg", tmp_path / "local.gpkg"
    assert main(["--config", str(config), "--lake", f"s3://{BUCKET}/{PREFIX}", *RANGE, "-o", str(from_s3)]) == 0
    assert main(["--lake", str(published_lake), *RANGE, "-o", str(local), "--no-progress"]) == 0
    for layer in ("fields", "late_fields", "rejected_records"):
        remote, here = pyogrio.read_dataframe(from_s3, layer=layer), pyogrio.read_dataframe(local, layer=layer)
        assert len(remote) > 0 and remote.equals(here), layer


def test_an_export_kept_in_the_bucket_opens_through_vsis3(s3_lake, tmp_path):
    """The README's /vsis3/ path and GDAL settings for an S3 that is not AWS, read by GDAL (pyogrio) in a
    process of its own: GDAL holds the GIL while it waits, and moto's server here is a thread."""
    store, config = s3_lake
    out = tmp_path / "fields.gpkg"
    assert main(["--config", str(config), "--lake", f"s3://{BUCKET}/{PREFIX}", *RANGE, "-o", str(out)]) == 0
    store.put_file("exports/fields.gpkg", out)
    endpoint = yaml.safe_load(config.read_text())["s3_endpoint_url"].removeprefix("http://")
    settings = dict(s.split("=", 1) for s in snippets.VSIS3_OPTIONS.replace("127.0.0.1:9000", endpoint).split())
    path = snippets.VSIS3_PATH.replace("my-bucket/my-prefix", f"{BUCKET}/{PREFIX}")
    read = (
        "import json, sys, pyogrio\n"
        "frame = pyogrio.read_dataframe(sys.argv[1], layer='fields')\n"
        "print(json.dumps([frame.field_id.tolist(), frame.geometry.to_wkt().tolist()]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", read, path], env={**os.environ, **settings}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    local = pyogrio.read_dataframe(out, layer="fields")
    assert json.loads(proc.stdout) == [local.field_id.tolist(), local.geometry.to_wkt().tolist()]
    assert len(local) > 0


def test_the_store_is_the_pipelines_with_its_retry_settings(s3_lake):
    _, config = s3_lake
    store = open_lake(f"s3://{BUCKET}/{PREFIX}/", config)
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == (BUCKET, PREFIX)
    assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_a_missing_s3_object_is_named_with_its_uri(s3_lake, tmp_path, capsys):
    store, config = s3_lake
    store.delete(keys.fields_key("2025-01-02"))
    out = tmp_path / "x.gpkg"
    status = main(["--config", str(config), "--lake", f"s3://{BUCKET}/{PREFIX}", *RANGE, "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert f"cannot read s3://{BUCKET}/{PREFIX}/fields/date=2025-01-02/fields.parquet" in err
    assert not out.exists()
