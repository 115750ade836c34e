"""The asset checks fail when what was written disagrees with the spec or with the manifest."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from geospatial_pipeline.core.rules import Rules
from geospatial_pipeline.defs.assets import FIELDS, REJECTED
from geospatial_pipeline.defs.checks import conservation_problems, evaluate_checks, geo_metadata_problems
from geospatial_pipeline.lake.geoparquet import geo_metadata
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import run_partition


@pytest.fixture
def published(lake_dir, fixture_settings):
    store = LocalStore(lake_dir)
    report = run_partition(store, dt.date(2025, 1, 2), fixture_settings.rules(), target_crs="EPSG:4326")
    return store, report


def test_checks_pass_on_a_real_run(published):
    store, report = published
    results = {r.check_name: r for r in evaluate_checks(store, report, 0.5, fields=FIELDS, rejected=REJECTED)}
    assert all(r.passed for r in results.values()), {k: r.metadata for k, r in results.items()}


def test_conservation_check_recounts_from_storage(published):
    store, report = published
    assert conservation_problems(store, report)[0] == []
    # A rejected record that never reached the quarantine file:
    store.put_bytes(
        report.outputs["rejected"]["key"], store.get_bytes(report.outputs["rejected"]["key"]).splitlines()[0]
    )
    problems, found = conservation_problems(store, report)
    assert found["rejected"] == 1 and any(p.startswith("rejected:") for p in problems)


def test_conservation_check_catches_unbalanced_counts(published):
    store, report = published
    broken = copy.deepcopy(report)
    broken.counts["superseded"] += 1
    assert any("outcomes" in p for p in conservation_problems(store, broken)[0])
    broken = copy.deepcopy(report)
    broken.counts["merged_late"] += 1
    assert conservation_problems(store, broken)[0]


def test_geo_metadata_problems_are_specific():
    good = geo_metadata("EPSG:4326", ["Polygon"], [0.0, 0.0, 1.0, 1.0])
    assert geo_metadata_problems(good, rows=3) == []
    assert geo_metadata_problems(None, rows=3) == ["no `geo` key in the Parquet file metadata"]
    bad = copy.deepcopy(good)
    bad["version"] = "1.0.0"
    bad["columns"]["geometry"]["orientation"] = "clockwise"
    del bad["columns"]["geometry"]["covering"]
    bad["columns"]["geometry"]["bbox"] = [1, 0, 0, 1]
    problems = geo_metadata_problems(bad, rows=3)
    assert len(problems) == 4, problems


def test_rejection_ratio_check_warns_above_threshold(published):
    store, report = published
    results = {r.check_name: r for r in evaluate_checks(store, report, 0.1, fields=FIELDS, rejected=REJECTED)}
    ratio_check = results["rejected_ratio_within_threshold"]
    assert not ratio_check.passed and ratio_check.severity.value == "WARN"
    assert ratio_check.metadata["rejected_ratio"].value == pytest.approx(2 / 6, abs=1e-6)


def test_rules_dataclass_defaults_match_the_seed():
    assert Rules().lateness_window == dt.timedelta(days=1)
