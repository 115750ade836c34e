"""Security: no credentials in the repository, configuration loaded safely and validated, and object keys
that can never leave their folder or the store's prefix, whatever ids, dates or names they are fed.

The deployment posture (checkov over Terraform, Kubernetes and the Dockerfile; non-root read-only
containers; the prefix-scoped IAM policy; the TLS-only bucket policy) is tested in tests/deploy/.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from reliability_support import FIXTURES, REPO

from geospatial_pipeline.defs.resources import lake_resource
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.keys import UnsafeKeyError
from geospatial_pipeline.lake.local_store import LOCAL_TMP_DIR, LocalStore
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.settings import ConfigError, PipelineSettings, load_settings

# --- no credentials ------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret access key": re.compile(
        r"(?i)aws.{0,20}secret.{0,20}[\"'=:\s]+(?![A-Za-z0-9/+]*(?:EXAMPLE|example))[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
}


def repository_files() -> list[Path]:
    """What git would commit: tracked files plus untracked ones that are not ignored."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name and (REPO / name).is_file()]


def secrets_in(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_the_secret_scan_recognises_credentials():
    key_id = "AKIA" + "Q" * 16
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "Z" * 10
    assert secrets_in(f"aws_access_key_id = {key_id}") == ["AWS access key id"]
    assert secrets_in(f'AWS_SECRET_ACCESS_KEY: "{secret}"') == ["AWS secret access key"]
    assert secrets_in("-----BEGIN RSA " + "PRIVATE KEY-----") == ["private key"]
    assert secrets_in("AWS_ACCESS_KEY_ID=testing  # moto's dummy") == []


def test_no_credentials_in_code_config_or_images():
    files = repository_files()
    assert any(f.name == "Dockerfile" for f in files) and any(f.suffix == ".tf" for f in files)
    found = []
    for path in files:
        if path.stat().st_size > 2_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{path.relative_to(REPO)}: {what}" for what in secrets_in(text)]
    assert found == []


def test_deployment_and_images_set_no_static_aws_credentials():
    names = re.compile(r"AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)|aws_access_key_id|aws_secret_access_key")
    deployment = [
        f
        for f in repository_files()
        if f.name in ("Dockerfile", ".dockerignore")
        or f.relative_to(REPO).parts[0] in ("terraform", "k8s")
        or f.suffix in (".yaml", ".yml")
        and f.relative_to(REPO).parts[0] not in ("tests",)
    ]
    assert deployment
    assert [str(f.relative_to(REPO)) for f in deployment if names.search(f.read_text(errors="replace"))] == []


def test_settings_hold_no_credentials_and_the_client_uses_the_default_chain(settings_for, monkeypatch):
    assert not [f for f in PipelineSettings.model_fields if re.search(r"secret|password|access_key|token", f)]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    resource = lake_resource(settings_for(s3_bucket="some-bucket", s3_region="us-east-1"))
    assert resource.s3.aws_access_key_id is None and resource.s3.aws_secret_access_key is None
    credentials = resource.store().client._request_signer._credentials
    assert (credentials.method, credentials.access_key) == ("env", "testing-from-environment")


# --- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "log_level: !!python/object/apply:os.system ['touch {marker}']",
        "bounds: !!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "s3_bucket: !!python/name:os.system",
    ],
)
def test_a_yaml_config_with_python_tags_is_refused_and_runs_nothing(payload, tmp_path):
    marker = tmp_path / "executed"
    config = tmp_path / "config.yaml"
    config.write_text(payload.format(marker=marker))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config)
    assert not marker.exists()


@pytest.mark.parametrize(
    "text, key",
    [
        ("s3_bucket: ok-bucket\naws_secret_access_key: x\n", "aws_secret_access_key"),
        ("s3_prefix: 'lake/../other'\n", "s3_prefix"),
        ("s3_bucket: 'Bad_Bucket/..'\n", "s3_bucket"),
        ("s3_max_attempts: many\n", "s3_max_attempts"),
        ("s3_max_attempts: 0\n", "s3_max_attempts"),
        ("s3_retry_mode: forever\n", "s3_retry_mode"),
        ("max_record_bytes: 10\n", "max_record_bytes"),
        ("target_crs: 'EPSG:0'\n", "target_crs"),
        ("- a\n- list\n", "top level"),
    ],
)
def test_invalid_configuration_is_refused_naming_the_key(text, key, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_settings(config)


def test_the_fixture_configuration_loads(tmp_path):
    assert load_settings(FIXTURES / "config.yaml").bounds.min_lon == -25.0


# --- keys ----------------------------------------------------------------------------------------------

HOSTILE_SEGMENTS = [
    "",
    ".",
    "..",
    "../etc",
    "a/b",
    "a\\b",
    "/abs",
    "x\x00y",
    "line\nbreak",
    "\x7f",
    "\ud800",
    "é" * 128,
    "x" * 256,
]
HOSTILE_DATES = [
    "2025-01-01/../../x",
    "../../../etc/passwd",
    "2025-1-1",
    "２０２５-０１-０１",
    "٢٠٢٥-٠١-٠١",
    "2025-01-01\n",
    " 2025-01-01",
    "2025-02-30",
    "0000-01-01",
    "20250101",
    "",
    dt.datetime(2025, 1, 1, 12, 0),
    20250101,
    None,
    b"2025-01-01",
]


@pytest.mark.parametrize("value", HOSTILE_SEGMENTS, ids=repr)
def test_hostile_segments_are_refused(value):
    with pytest.raises(UnsafeKeyError):
        keys.key("late_data", value)
    with pytest.raises(UnsafeKeyError):
        keys.late_object_key("2025-01-01", value, ".geojson")


@pytest.mark.parametrize("value", HOSTILE_DATES, ids=repr)
def test_hostile_dates_are_refused_by_every_key_builder(value):
    builders = [
        keys.raw_prefix,
        keys.fields_key,
        keys.rejected_key,
        keys.manifest_key,
        keys.late_batches_prefix,
        lambda d: keys.late_object_key(d, "F-1", ".txt"),
        lambda d: keys.late_batch_key(d, "2025-01-01"),
        lambda d: keys.late_batch_key("2025-01-01", d),
    ]
    for build in builders:
        with pytest.raises(UnsafeKeyError):
            build(value)


def test_stray_batch_names_are_not_batches():
    assert keys.parse_late_batch_key("late_data/_batches/2025-01-01/2025-01-02.parquet") == ("2025-01-01", "2025-01-02")
    for stray in [
        "late_data/_batches/2025-13-45/2025-01-02.parquet",
        "late_data/_batches/２０２５-０１-０１/2025-01-02.parquet",
        "late_data/_batches/2025-01-01/../2025-01-02.parquet",
        "late_data/_batches/2025-01-01/2025-01-02.parquet.tmp",
    ]:
        assert keys.parse_late_batch_key(stray) is None


def _is_contained(key: str, folder: str) -> bool:
    return key.startswith(folder) and posixpath.normpath(key) == key and ".." not in key.split("/")


@settings(max_examples=300, deadline=None)
@given(field_id=st.text(), date=st.one_of(st.dates(), st.text(max_size=12)))
def test_late_object_keys_stay_in_their_date_folder(field_id, date):
    try:
        built = keys.late_object_key(date, field_id, ".geojson")
    except UnsafeKeyError:
        return
    day = date.isoformat() if isinstance(date, dt.date) else date
    assert built == f"late_data/{day}/{field_id}.geojson"
    assert _is_contained(built, f"late_data/{day}/") and built.count("/") == 2


@settings(max_examples=200, deadline=None)
@given(
    key=st.one_of(
        st.text(), st.sampled_from(["/".join(p) for p in zip(HOSTILE_SEGMENTS, HOSTILE_SEGMENTS[1:], strict=False)])
    )
)
def test_the_local_store_writes_nothing_outside_its_root(key):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        root = base / "lake"
        store = LocalStore(root)
        try:
            store.put_bytes(key, b"x")
        except UnsafeKeyError:
            pass
        else:
            assert (root / key).resolve().is_relative_to(root) and (root / key).read_bytes() == b"x"
            assert not key.startswith(LOCAL_TMP_DIR)
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                assert Path(dirpath, name).resolve().is_relative_to(root)
        assert set(os.listdir(base)) <= {"lake"}


@pytest.mark.parametrize("prefix", ["../up", "a//b", "a/./b", "x\x00", "a\\b"])
def test_a_hostile_store_prefix_is_refused(prefix):
    with pytest.raises(UnsafeKeyError):
        S3Store(client=None, bucket="b", prefix=prefix)


@pytest.mark.parametrize("prefix", ["../", "raw/../../", "/abs", "a//"])
def test_hostile_listing_prefixes_are_refused(prefix, tmp_path):
    with pytest.raises(UnsafeKeyError):
        list(LocalStore(tmp_path).list(prefix))


def test_the_s3_store_never_writes_outside_its_prefix(aws_env):
    candidates = HOSTILE_SEGMENTS + [
        "ok.txt",
        "late_data/2025-01-01/F-1.geojson",
        "a/../../b",
        "..%2f..%2fescape",
        "raw/./x",
        "manifests/",
        "%2e%2e/x",
        "\u2028sep",
        "😀/ok",
    ]
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake-bucket")
        client.put_object(Bucket="lake-bucket", Key="outside/keep.txt", Body=b"untouched")
        store = S3Store(client, "lake-bucket", "/tenant/lake/")
        accepted = []
        for key in candidates:
            try:
                store.put_bytes(key, b"x")
                accepted.append(key)
            except UnsafeKeyError:
                continue
            assert store.uri(key) == f"s3://lake-bucket/tenant/lake/{key}"
        listed = [o["Key"] for o in client.list_objects_v2(Bucket="lake-bucket")["Contents"]]
        assert sorted(listed) == sorted(["outside/keep.txt"] + [f"tenant/lake/{k}" for k in accepted])
        assert sorted(info.key for info in store.list("")) == sorted(accepted)
        assert {"ok.txt", "late_data/2025-01-01/F-1.geojson", "..%2f..%2fescape", "%2e%2e/x"} <= set(accepted)
        assert not {"a/../../b", "raw/./x", "manifests/", "..", "../etc"} & set(accepted)
