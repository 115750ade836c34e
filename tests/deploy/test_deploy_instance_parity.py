"""The cluster's Dagster instance keeps the same run guards as the local one (dagster.yaml)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_one_run_per_partition_and_run_retries_match_local_instance():
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    helm = yaml.safe_load((REPO / "k8s" / "helm" / "dagster-core.values.yaml").read_text())
    daemon = helm["dagsterDaemon"]
    limits = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    local_limits = local["concurrency"]["runs"]["tag_concurrency_limits"]
    as_pairs = {(x["key"], x["limit"], x["value"]["applyLimitPerUniqueValue"]) for x in limits}
    assert as_pairs == {(x["key"], x["limit"], x["value"]["applyLimitPerUniqueValue"]) for x in local_limits}
    assert ("dagster/partition", 1, True) in as_pairs
    assert daemon["runRetries"] == {"enabled": True, "maxRetries": local["run_retries"]["max_retries"]}
