"""S3 faults: a partition run through a proxy that throws 500/503/SlowDown, drops connections and cuts
bodies off publishes exactly what a fault-free run does; a bucket that keeps failing stops the run with
a clear error and no manifest claiming success.

Servers: moto's S3 (ThreadedMotoServer) and the fault proxy, both on 127.0.0.1, started by the tests.
"""

from __future__ import annotations

import boto3
import pytest
from dagster import materialize
from reliability_support import (
    ALL_FAULTS,
    FIXTURE_DATES,
    FIXTURES,
    FaultProxy,
    assert_reader_view_consistent,
    diff_states,
    lake_state,
    run,
)

from geospatial_pipeline.defs.assets import build_partition_assets
from geospatial_pipeline.defs.resources import lake_resource
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.lake.store import ObjectStoreError

pytestmark = pytest.mark.slow

BUCKET = "reliability-lake"


@pytest.fixture
def s3(moto_endpoint, aws_env):
    """A fault-free client of the moto server, with the test bucket."""
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=BUCKET)
    return client


def land_fixtures(client, prefix: str) -> None:
    for path in sorted((FIXTURES / "raw").rglob("*")):
        if path.is_file():
            rel = path.relative_to(FIXTURES).as_posix()
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{rel}", Body=path.read_bytes())


def s3_settings(settings_for, endpoint: str, prefix: str, **overrides):
    return settings_for(
        s3_bucket=BUCKET, s3_prefix=prefix, s3_region="us-east-1", s3_endpoint_url=endpoint, **overrides
    )


def test_retry_configuration_comes_from_settings(settings_for, aws_env):
    settings = settings_for(s3_bucket=BUCKET, s3_retry_mode="adaptive", s3_max_attempts=13, s3_region="us-east-1")
    store = lake_resource(settings).store()
    assert isinstance(store, S3Store) and store.bucket == BUCKET
    # botocore's `max_attempts` counts retries; the setting counts attempts, the first one included.
    assert store.client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 13}


def test_partition_through_faulty_s3_equals_a_fault_free_run(s3, moto_endpoint, settings_for):
    land_fixtures(s3, "clean")
    land_fixtures(s3, "faulty")
    clean = lake_resource(s3_settings(settings_for, moto_endpoint, "clean")).store()
    for date in FIXTURE_DATES:
        run(clean, date, s3_settings(settings_for, moto_endpoint, "clean"))

    with FaultProxy(moto_endpoint, share=0.3, seed=20250101) as proxy:
        settings = s3_settings(settings_for, proxy.url, "faulty", s3_max_attempts=12)
        faulty = lake_resource(settings).store()
        reports = [run(faulty, date, settings) for date in FIXTURE_DATES]

    # Every kind of fault was injected, and plenty of them.
    assert set(proxy.injected) == set(ALL_FAULTS), proxy.injected
    assert sum(proxy.injected.values()) >= 20, proxy.injected
    # Read back fault-free: the same objects, byte for byte (manifests without run metadata).
    observed = S3Store(s3, BUCKET, "faulty")
    assert diff_states(lake_state(observed), lake_state(clean)) == []
    fields = keys.fields_key("2025-01-01")
    assert observed.get_bytes(fields) == clean.get_bytes(fields)
    assert [r.counts["input_records"] for r in reports] == [21, 6, 11]
    assert_reader_view_consistent(observed)


def test_a_bucket_that_always_fails_stops_the_run_with_a_clear_error_and_no_manifest(s3, moto_endpoint, settings_for):
    land_fixtures(s3, "down")
    with FaultProxy(moto_endpoint, share=1.0, faults=("503", "slowdown", "500")) as proxy:
        settings = s3_settings(settings_for, proxy.url, "down", s3_max_attempts=2)
        with pytest.raises(ObjectStoreError) as failure:
            run(lake_resource(settings).store(), "2025-01-01", settings)
    assert proxy.requests == {"GET": 2}, "one LIST, attempted exactly s3_max_attempts times"
    message = str(failure.value)
    assert f"s3://{BUCKET}/down/raw/2025-01-01/" in message
    assert "LIST" in message and "max retries" in message.lower()
    assert S3Store(s3, BUCKET, "down").head(keys.manifest_key("2025-01-01")) is None


def test_writes_that_always_fail_leave_the_previous_manifest_and_its_objects_untouched(s3, moto_endpoint, settings_for):
    land_fixtures(s3, "readonly")
    observed = S3Store(s3, BUCKET, "readonly")
    for date in FIXTURE_DATES:
        run(observed, date, s3_settings(settings_for, moto_endpoint, "readonly"))
    before = lake_state(observed)
    manifest_bytes = observed.get_bytes(keys.manifest_key("2025-01-01"))

    with FaultProxy(moto_endpoint, share=1.0, faults=("500",), methods=frozenset({"PUT"})) as proxy:
        settings = s3_settings(settings_for, proxy.url, "readonly", s3_max_attempts=2)
        with pytest.raises(ObjectStoreError) as failure:
            run(lake_resource(settings).store(), "2025-01-01", settings)
    assert proxy.injected["500"] >= 2
    assert f"s3://{BUCKET}/readonly/" in str(failure.value) and "PUT" in str(failure.value)
    assert observed.get_bytes(keys.manifest_key("2025-01-01")) == manifest_bytes
    assert diff_states(lake_state(observed), before) == []
    assert_reader_view_consistent(observed)


def test_dagster_run_against_a_failing_bucket_fails_naming_bucket_and_key(s3, moto_endpoint, settings_for, instance):
    land_fixtures(s3, "dagster-down")
    with FaultProxy(moto_endpoint, share=1.0, faults=("503",)) as proxy:
        settings = s3_settings(settings_for, proxy.url, "dagster-down", s3_max_attempts=2)
        result = materialize(
            [build_partition_assets(settings)],
            partition_key="2025-01-02",
            resources={"lake": lake_resource(settings)},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the step must fail"
    error = failures[0].step_failure_data.error
    text = error.message + "".join(c.message for c in _causes(error))
    assert "ObjectStoreError" in text and f"s3://{BUCKET}/dagster-down/raw/2025-01-02/" in text
    assert not result.get_asset_materialization_events()
    assert S3Store(s3, BUCKET, "dagster-down").head(keys.manifest_key("2025-01-02")) is None


def _causes(error):
    while error is not None:
        yield error
        error = error.cause
