"""Lakes the export tests read: built once per session by the pipeline, never written to by a test (a test
that breaks a lake copies it first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geospatial_pipeline.lake.local_store import LocalStore
from tests.export.lakes import fixture_lake, grid_lake, settings_for


@pytest.fixture(scope="session")
def published_lake(tmp_path_factory) -> Path:
    """The fixture days 2025-01-01..03 as the pipeline and its backfills leave them."""
    lake = tmp_path_factory.mktemp("published") / "lake"
    fixture_lake(LocalStore(lake), settings_for(lake))
    return lake


@pytest.fixture(scope="session")
def grid_lake_dir(tmp_path_factory) -> Path:
    """The grid of fields (2025-02-01..02): on time, late, repaired and quarantined side by side."""
    lake = tmp_path_factory.mktemp("grid") / "lake"
    grid_lake(LocalStore(lake), settings_for(lake))
    return lake


@pytest.fixture
def lake_copy(published_lake, tmp_path) -> Path:
    """A copy of the published lake that a test may break."""
    copy = tmp_path / "lake"
    shutil.copytree(published_lake, copy)
    return copy
