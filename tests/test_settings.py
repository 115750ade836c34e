"""The settings model: file + env + defaults, and bad configuration failing at load with the key named."""

import datetime as dt
import logging

import pytest

from geospatial_pipeline.definitions import build_definitions
from geospatial_pipeline.settings import ConfigError, load_settings


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_run_locally_without_a_bucket():
    settings = load_settings()
    assert settings.s3_bucket is None
    assert str(settings.local_lake_path) == "lake"
    assert settings.partition_start_date == dt.date(2025, 1, 1)
    assert settings.lateness_window == dt.timedelta(days=1)
    assert settings.target_crs == "EPSG:4326"
    assert settings.allowed_geometry_types == ["Polygon", "MultiPolygon"]


def test_seed_configmap_keys_load(tmp_path):
    path = write(tmp_path, "s3_bucket: geo-dev-data\ns3_prefix: /pipelines/fields/\nlog_level: DEBUG\n")
    settings = load_settings(path)
    assert (settings.s3_bucket, settings.s3_prefix, settings.log_level) == ("geo-dev-data", "pipelines/fields", "DEBUG")


def test_config_path_from_environment_and_env_overrides(tmp_path, monkeypatch):
    path = write(tmp_path, "log_level: WARNING\nlateness_window_hours: 36\n")
    monkeypatch.setenv("GEOSPATIAL_PIPELINE_CONFIG", str(path))
    monkeypatch.setenv("GEOSPATIAL_PIPELINE_LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.log_level == "ERROR"  # env beats the file
    assert settings.lateness_window == dt.timedelta(hours=36)  # the file beats defaults


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("s3_bukcet: typo\n", "s3_bukcet"),
        ("lateness_window_hours: -1\n", "lateness_window_hours"),
        ("log_level: LOUD\n", "log_level"),
        ("target_crs: EPSG:999999\n", "target_crs"),
        ("allowed_geometry_types: [Polygon, Hexagon]\n", "allowed_geometry_types"),
        ("bounds: {min_lon: 10, max_lon: 5}\n", "bounds"),
        ("bounds: {min_lon: 10, west: 5}\n", "bounds.west"),
        ("partition_start_date: someday\n", "partition_start_date"),
        ("s3_prefix: a/../b\n", "s3_prefix"),
        ("s3_retry_mode: sometimes\n", "s3_retry_mode"),
    ],
)
def test_bad_configuration_fails_naming_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert f"'{named}" in str(err.value)  # e.g. 'allowed_geometry_types.1'


def test_bad_environment_override_is_named(monkeypatch):
    monkeypatch.setenv("GEOSPATIAL_PIPELINE_MAX_VERTICES", "lots")
    with pytest.raises(ConfigError, match="max_vertices"):
        load_settings()


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "log_level: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_non_mapping_and_missing_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")


def test_digest_changes_with_settings():
    assert load_settings().digest() == load_settings().digest()
    assert load_settings().digest() != load_settings(lateness_window_hours=30).digest()


@pytest.mark.parametrize("level", ["DEBUG", "WARNING"])
def test_log_level_sets_the_pipeline_loggers(level):
    build_definitions(load_settings(log_level=level))
    logger = logging.getLogger("geospatial_pipeline.defs.assets")
    assert logger.getEffectiveLevel() == getattr(logging, level)
    assert logger.isEnabledFor(logging.INFO) == (level == "DEBUG")


def test_partition_start_date_comes_from_configuration():
    defs = build_definitions(load_settings(partition_start_date="2024-06-01"))
    job = defs.resolve_job_def("publish_field_partition_job")
    keys = job.partitions_def.get_partition_keys(current_time=dt.datetime(2024, 6, 4, 1, tzinfo=dt.UTC))
    assert keys == ["2024-06-01", "2024-06-02", "2024-06-03"]
