"""The pipeline's one settings model.

Loaded from a YAML file (the Kubernetes ConfigMap mounted at /etc/dagster/config/config.yaml, or the
file named by GEOSPATIAL_PIPELINE_CONFIG), then overridden by GEOSPATIAL_PIPELINE_<KEY> environment
variables. Every default runs locally with no cloud account: no bucket means the lake is ./lake.
The model is also the schema of the ConfigMap: unknown keys fail at load time, naming the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from geospatial_pipeline.core.rules import Rules, SpatialRules
from geospatial_pipeline.lake.limits import Limits

CONFIG_PATH_ENV = "GEOSPATIAL_PIPELINE_CONFIG"
CLUSTER_CONFIG_PATH = Path("/etc/dagster/config/config.yaml")
ENV_PREFIX = "GEOSPATIAL_PIPELINE_"

GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString")


class ConfigError(ValueError):
    """Configuration that cannot be loaded; the message names the offending key."""


def _known_crs(value: str) -> str:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(value)
    except CRSError as exc:
        raise ValueError(f"unknown CRS {value!r}: {exc}") from None
    return value


def _s3_prefix(value: str) -> str:
    value = value.strip("/")
    if any(part in ("", ".", "..") for part in value.split("/")) and value:
        raise ValueError("must not contain empty, '.' or '..' segments")
    return value


class Bounds(BaseModel):
    """A lon/lat box (EPSG:4326 degrees) that every published field must lie within."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_lon: float = Field(-180.0, ge=-180.0, le=180.0)
    min_lat: float = Field(-90.0, ge=-90.0, le=90.0)
    max_lon: float = Field(180.0, ge=-180.0, le=180.0)
    max_lat: float = Field(90.0, ge=-90.0, le=90.0)

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min_lon >= self.max_lon or self.min_lat >= self.max_lat:
            raise ValueError("min_lon/min_lat must be below max_lon/max_lat")
        return self


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML config file with yaml.safe_load; a missing default path means 'no file'."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{CONFIG_PATH_ENV}: cannot read config file {self.path}: {exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: not valid YAML: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: top level must be a mapping of settings, got {type(data).__name__}")
        return data


class PipelineSettings(BaseSettings):
    """Everything an operator can set. Field names are the config.yaml keys."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        env_nested_delimiter="__",
    )

    # Where the lake lives. No bucket: the local folder below.
    s3_bucket: str | None = Field(None, min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")
    s3_prefix: Annotated[str, AfterValidator(_s3_prefix)] = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = Field(None, description="A non-AWS endpoint, e.g. a local S3 server")
    s3_retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    s3_max_attempts: int = Field(8, ge=1, le=20)
    s3_max_pool_connections: int = Field(16, ge=1, le=256)
    local_lake_path: Path = Path("lake")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Partitions and the late-arrival rule.
    partition_start_date: dt.date = dt.date(2025, 1, 1)
    lateness_window_hours: float = Field(24.0, gt=0, le=24 * 366)
    max_clock_skew_minutes: float = Field(10.0, ge=0, le=24 * 60)

    # Spatial rules.
    target_crs: Annotated[str, AfterValidator(_known_crs)] = "EPSG:4326"
    bounds: Bounds = Bounds()
    allowed_geometry_types: list[Literal[GEOMETRY_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["Polygon", "MultiPolygon"], min_length=1
    )
    repair_invalid: bool = False

    # Limits that keep one bad record or file from exhausting memory.
    max_record_bytes: int = Field(1_000_000, ge=1_000)
    max_vertices: int = Field(100_000, ge=4)
    # A FeatureCollection is parsed whole (about 10x its size in memory); big batches come as GeoJSONSeq.
    max_collection_bytes: int = Field(64 << 20, ge=1_000, description="Largest .geojson FeatureCollection")
    chunk_records: int = Field(50_000, ge=1)

    # Publishing.
    max_rejected_ratio: float = Field(0.05, ge=0, le=1, description="Above this the rejection check warns")
    late_write_concurrency: int = Field(16, ge=1, le=256)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls, _config_path())

    @property
    def lateness_window(self) -> dt.timedelta:
        return dt.timedelta(hours=self.lateness_window_hours)

    @property
    def max_clock_skew(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.max_clock_skew_minutes)

    def rules(self) -> Rules:
        return Rules(
            partition_start=self.partition_start_date,
            lateness_window=self.lateness_window,
            max_clock_skew=self.max_clock_skew,
            spatial=SpatialRules(
                target_crs=self.target_crs,
                bounds=(self.bounds.min_lon, self.bounds.min_lat, self.bounds.max_lon, self.bounds.max_lat),
                allowed_types=tuple(self.allowed_geometry_types),
                repair_invalid=self.repair_invalid,
                max_vertices=self.max_vertices,
            ),
        )

    def limits(self) -> Limits:
        return Limits(
            chunk_records=self.chunk_records,
            max_record_bytes=self.max_record_bytes,
            max_collection_bytes=self.max_collection_bytes,
            late_write_concurrency=self.late_write_concurrency,
        )

    def digest(self) -> str:
        """A stable hash of the effective settings, recorded in every manifest."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def _config_path() -> Path | None:
    explicit = os.environ.get(CONFIG_PATH_ENV)
    if explicit:
        return Path(explicit)
    return CLUSTER_CONFIG_PATH if CLUSTER_CONFIG_PATH.is_file() else None


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown setting {key!r}")
        else:
            lines.append(f"setting {key!r}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> PipelineSettings:
    """Load and validate settings; raises ConfigError naming every bad key.

    `path` wins over GEOSPATIAL_PIPELINE_CONFIG; `overrides` win over everything (tests use them).
    """
    previous = os.environ.get(CONFIG_PATH_ENV)
    try:
        if path is not None:
            os.environ[CONFIG_PATH_ENV] = str(path)
        source = os.environ.get(CONFIG_PATH_ENV) or (
            str(CLUSTER_CONFIG_PATH) if CLUSTER_CONFIG_PATH.is_file() else "defaults"
        )
        try:
            return PipelineSettings(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"invalid configuration ({source}): {_describe(exc)}") from None
    finally:
        if path is not None:
            if previous is None:
                os.environ.pop(CONFIG_PATH_ENV, None)
            else:
                os.environ[CONFIG_PATH_ENV] = previous
