"""The steps that measure the pipeline behind its services: late objects PUT to an S3 server (moto, on
127.0.0.1, in a process of its own) and the partition materialized through Dagster end to end."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.generate import PARTITION
from benchmarks.steps import CONFIG, lake_with, median_run, usage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_s3(p: dict) -> dict:
    """Late objects PUT to moto's server on 127.0.0.1 (its own process), one at a time and pooled."""
    import psutil
    import pyarrow.parquet as pq
    from dagster_aws.s3 import S3Resource

    from geospatial_pipeline.defs.resources import LakeResource
    from geospatial_pipeline.lake.s3_store import S3Store
    from geospatial_pipeline.lake.writers import write_late_objects

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from moto.server import ThreadedMotoServer; "
            f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}); s.start(); "
            "print('ready', flush=True); sys.stdin.read(); s.stop()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in server.stdout:  # the server may log before it is up
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("moto server did not start")
        client = LakeResource(
            s3=S3Resource(
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                max_attempts=8,
            ),
            retry_mode="standard",
            max_pool_connections=p["concurrency"],
        ).s3_client()
        client.create_bucket(Bucket="bench")
        rows = pq.read_table(p["sample"])
        runs: dict[str, list[dict]] = {"sequential": [], "pooled": []}
        moto = psutil.Process(server.pid)
        # Alternating rounds, so a slow spell of the machine hits both modes alike; medians are reported.
        for round_no in range(p.get("rounds", 3)):
            for label, concurrency in (("sequential", 1), ("pooled", p["concurrency"])):
                store = S3Store(client, "bench", prefix=f"{label}-{round_no}")
                t, c, s = time.perf_counter(), time.process_time(), sum(moto.cpu_times()[:2])
                written = len(write_late_objects(store, rows, concurrency))
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                server_cpu = sum(moto.cpu_times()[:2]) - s
                runs[label].append(
                    {
                        "objects": written,
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "server_cpu_s": server_cpu,
                        "concurrency": concurrency,
                    }
                )
        return {label: {**median_run(r), "wall_runs": [x["wall_s"] for x in r]} for label, r in runs.items()}
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def child_dagster(p: dict) -> dict:
    """The daily partition materialized through Dagster end to end, on a real (ephemeral) instance."""
    t0, c0 = time.perf_counter(), time.process_time()
    from dagster import DagsterInstance, materialize

    from geospatial_pipeline.definitions import build_definitions
    from geospatial_pipeline.settings import load_settings

    lake = lake_with(Path(p["source"]))
    defs = build_definitions(load_settings(CONFIG, local_lake_path=lake))
    with DagsterInstance.ephemeral() as instance:
        t = time.perf_counter()
        result = materialize(
            list(defs.assets),
            partition_key=PARTITION.isoformat(),
            instance=instance,
            resources=defs.resources,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        materialize_s = time.perf_counter() - t
    assert result.success
    return usage(t0, c0, records=p["records"], materialize_s=materialize_s)
