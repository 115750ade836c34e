"""Fixtures of the reliability tests: fixture settings for any lake, a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Test modules here import reliability_support from this folder; the conftest is imported before them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_support import FIXTURES  # noqa: E402

from geospatial_pipeline.settings import PipelineSettings, load_settings  # noqa: E402
from tests.conftest import use_fake_aws  # noqa: E402


@pytest.fixture
def settings_for() -> Callable[..., PipelineSettings]:
    """Settings of the fixture batches (Central Europe) for a given local lake, plus overrides."""

    def make(lake: Path | None = None, **overrides) -> PipelineSettings:
        if lake is not None:
            overrides["local_lake_path"] = lake
        return load_settings(FIXTURES / "config.yaml", **overrides)

    return make


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials for the local S3 server; no shared config, no instance metadata lookups."""
    use_fake_aws(monkeypatch)


@pytest.fixture(scope="module")
def moto_endpoint():
    """moto's S3 in server mode on 127.0.0.1, for the whole module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
