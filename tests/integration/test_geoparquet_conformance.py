"""Published files against the real specs: geoparquet-validator (OGC abstract tests) and the GeoParquet
1.1.0 JSON schema from ../shared/reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import materialize

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.geoparquet import GeoParquetFile
from tests.conftest import REPO

VALIDATOR = Path(sys.executable).parent / "geoparquet-validator"
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture
def published(lake_dir, fixture_settings, instance) -> list[Path]:
    defs = build_definitions(fixture_settings)
    for date in ("2025-01-01", "2025-01-02"):
        assert materialize(list(defs.assets), partition_key=date, instance=instance, resources=defs.resources).success
    return [
        lake_dir / keys.fields_key("2025-01-01"),
        lake_dir / keys.late_batch_key("2025-01-01", "2025-01-02"),
    ]


def validate(path: Path) -> dict:
    if not VALIDATOR.exists():
        pytest.skip(f"geoparquet-validator is not installed in {VALIDATOR.parent}")
    proc = subprocess.run([str(VALIDATOR), "check", "--json", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_published_files_pass_every_conformance_class(published):
    for path in published:
        report = validate(path)
        statuses = {o["id"]: o["status"] for o in report["outcomes"]}
        assert not [i for i, status in statuses.items() if status not in ("pass", "skip")], report
        for conformance_class in ("core", "covering", "distribution"):
            ran = [i for i, s in statuses.items() if i.startswith(f"/conf/{conformance_class}/") and s == "pass"]
            assert ran, f"no {conformance_class} test passed for {path}"


def test_empty_partition_is_still_valid_geoparquet(tmp_path):
    path = tmp_path / "empty.parquet"
    GeoParquetFile(path, "EPSG:4326").close()
    report = validate(path)
    assert all(o["status"] in ("pass", "skip") for o in report["outcomes"]), report


def test_geo_metadata_matches_the_geoparquet_1_1_schema(published):
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource

    schema_path = REFERENCE / "geoparquet-1.1.0.schema.json"
    if not schema_path.exists():
        pytest.skip(f"reference schema not found at {schema_path}")
    import pyproj

    projjson = json.loads((Path(pyproj.datadir.get_data_dir()) / "projjson.schema.json").read_text())
    schema = json.loads(schema_path.read_text())
    registry = Registry().with_resource(projjson["$id"], Resource.from_contents(projjson))
    for path in published:
        geo = json.loads(pq.ParquetFile(path).metadata.metadata[b"geo"])
        jsonschema.validators.validator_for(schema)(schema, registry=registry).validate(geo)
