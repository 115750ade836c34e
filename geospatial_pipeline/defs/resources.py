"""The lake as a Dagster resource: a local folder, or an S3 bucket reached through dagster-aws's S3Resource.

Usage, in an asset or sensor that names the resource by type::

    def my_asset(lake: LakeResource) -> None:
        store = lake.store()  # an ObjectStore: LocalStore or S3Store
        store.put_bytes("notes/hello.txt", b"hi")

`LakeResource` composes an `S3Resource` (a nested resource, configured on its own) rather than
subclassing it: every connection field of dagster-aws's resource (endpoint, region, profile, SSL,
credentials, unsigned access, attempts) means here what it means there. The lake adds what the
S3Resource has no field for: botocore's retry mode, the connection pool (the late objects are PUT from
up to `late_write_concurrency` threads) and timeouts.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.s3_store import S3Store
from geospatial_pipeline.lake.store import ObjectStore
from geospatial_pipeline.settings import PipelineSettings

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60


class LakeResource(ConfigurableResource):
    """Where the lake lives: `s3://{bucket}/{prefix}/` when a bucket is set, else `local_path`.

    Credentials come from the default AWS chain (IRSA in the cluster) unless `s3` names some.
    """

    s3: S3Resource = Field(description="Connection to S3 (dagster-aws); unused without a bucket")
    local_path: str = Field(default="lake", description="Lake root when no bucket is configured")
    bucket: str | None = Field(default=None, description="S3 bucket of the lake")
    prefix: str = Field(default="", description="Key prefix inside the bucket")
    retry_mode: str = Field(default="standard", description="botocore retry mode: standard, adaptive or legacy")
    max_pool_connections: int = Field(default=16, description="Concurrent connections per S3 client")

    def s3_client(self) -> Any:
        """A boto3 S3 client from the `s3` resource's fields, with the lake's retry mode and pool.

        `s3.max_attempts` counts attempts, the first one included (botocore's `total_max_attempts`).
        """
        s3 = self.s3
        config = Config(
            retries={"mode": self.retry_mode, "total_max_attempts": s3.max_attempts},
            max_pool_connections=self.max_pool_connections,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            signature_version=UNSIGNED if s3.use_unsigned_session else None,
        )
        session = boto3.session.Session(profile_name=s3.profile_name)
        return session.client(
            "s3",
            region_name=s3.region_name,
            endpoint_url=s3.endpoint_url,
            use_ssl=s3.use_ssl,
            verify=s3.verify,
            aws_access_key_id=s3.aws_access_key_id,
            aws_secret_access_key=s3.aws_secret_access_key,
            aws_session_token=s3.aws_session_token,
            config=config,
        )

    def store(self) -> ObjectStore:
        """The lake's ObjectStore; a new S3 client each call (clients are not shared across processes)."""
        if self.bucket:
            return S3Store(self.s3_client(), self.bucket, self.prefix)
        return LocalStore(self.local_path)


def lake_resource(settings: PipelineSettings) -> LakeResource:
    """The lake the settings name (the one place settings become a resource)."""
    return LakeResource(
        s3=S3Resource(
            region_name=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            max_attempts=settings.s3_max_attempts,
        ),
        local_path=str(settings.local_lake_path),
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        retry_mode=settings.s3_retry_mode,
        max_pool_connections=settings.s3_max_pool_connections,
    )
