"""Shared fixtures: fixture batches copied into a temporary lake, settings, a real Dagster instance."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
from pathlib import Path

import pytest

from geospatial_pipeline.settings import PipelineSettings, load_settings

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
FIXTURE_DATES = ["2025-01-01", "2025-01-02", "2025-01-03"]

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    """No test may reach beyond this machine: refuse any non-loopback TCP/UDP peer."""
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.gethostbyname(host)) if host == "localhost" else None
        if ip is None or not ip.is_loopback:
            raise OSError(f"tests may only connect to loopback addresses, not {address!r}")
    return _real_connect(self, address)


def use_fake_aws(monkeypatch) -> None:
    """moto's dummy credentials; no shared AWS config, no instance-metadata lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("GEOSPATIAL_PIPELINE_CONFIG", raising=False)


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    """A local lake holding the fixture landing batches under raw/."""
    lake = tmp_path / "lake"
    shutil.copytree(FIXTURES / "raw", lake / "raw")
    return lake


@pytest.fixture
def fixture_settings(lake_dir: Path) -> PipelineSettings:
    return load_settings(FIXTURES / "config.yaml", local_lake_path=lake_dir)


@pytest.fixture
def expected() -> dict[str, list[dict]]:
    return {d: json.loads((FIXTURES / "expected" / f"{d}.json").read_text()) for d in FIXTURE_DATES}


@pytest.fixture
def instance():
    from dagster import instance_for_test

    with instance_for_test() as inst:
        yield inst
