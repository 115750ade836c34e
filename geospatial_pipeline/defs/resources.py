"""Storage resources: the lake is a local folder or an S3 bucket, chosen by configuration."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from dagster_aws.s3 import S3Resource
from pydantic import Field

from geospatial_pipeline.lake.store import LocalStore, ObjectStore, S3Store
from geospatial_pipeline.settings import PipelineSettings


class PipelineS3Resource(S3Resource):
    """dagster-aws's S3Resource with the retry mode and connection pool set explicitly.

    Credentials come from the default AWS chain (IRSA in the cluster); none are configured here.
    """

    retry_mode: str = Field(default="standard", description="botocore retry mode: standard, adaptive or legacy")
    max_pool_connections: int = Field(default=16, description="Concurrent connections per client")

    def get_client(self) -> Any:
        config = Config(
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},  # attempts, first included
            max_pool_connections=self.max_pool_connections,
            connect_timeout=10,
            read_timeout=60,
        )
        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            "s3",
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=config,
        )


class LakeResource(PipelineS3Resource):
    """Where the lake lives: `s3://{bucket}/{prefix}/` when a bucket is set, else a local folder.

    It is itself the S3 resource (rather than nesting one) so the client settings sit beside the bucket.
    """

    local_path: str = Field(default="lake", description="Lake root when no bucket is configured")
    bucket: str | None = Field(default=None, description="S3 bucket of the lake")
    prefix: str = Field(default="", description="Key prefix inside the bucket")

    def get_object_to_set_on_execution_context(self) -> PipelineS3Resource:
        # S3Resource hands ops a bare boto3 client; `context.resources.lake` should be the lake itself.
        return self

    def store(self) -> ObjectStore:
        if self.bucket:
            return S3Store(self.get_client(), self.bucket, self.prefix)
        return LocalStore(self.local_path)


def lake_resource(settings: PipelineSettings) -> LakeResource:
    return LakeResource(
        local_path=str(settings.local_lake_path),
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        region_name=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        max_attempts=settings.s3_max_attempts,
        retry_mode=settings.s3_retry_mode,
        max_pool_connections=settings.s3_max_pool_connections,
    )
