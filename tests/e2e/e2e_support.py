"""End-to-end helpers: a Dagster deployment (webserver + daemon on 127.0.0.1) and bounded waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
MODULE = "geospatial_pipeline.definitions"


class Deadline:
    """One time budget shared by every wait of a test."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def wait_for(self, what: str, probe, interval: float = 0.5):
        """Poll `probe` until it returns something truthy; fail naming `what` when the budget runs out."""
        last_error = None
        while self.left() > 0:
            try:
                value = probe()
                if value:
                    return value
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = exc
            time.sleep(interval)
        pytest.fail(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Deployment:
    home: Path
    lake: Path
    port: int
    env: dict
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> None:
        out = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [str(VENV_BIN / args[0]), *args[1:]],
            cwd=self.home,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the whole tree can be stopped
        )
        out.close()

    def start_webserver(self) -> None:
        self.start("webserver", "dagster-webserver", "-h", "127.0.0.1", "-p", str(self.port), "-m", MODULE)

    def start_daemon(self) -> None:
        self.start("daemon", "dagster-daemon", "run", "-m", MODULE)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_text(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-6000:]}" for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL whatever of our process trees is left."""
        trees = []
        for proc in self.processes.values():
            try:
                trees.append(psutil.Process(proc.pid))
                trees.extend(psutil.Process(proc.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass
            if proc.poll() is None:
                with _suppress_missing():
                    os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(trees, timeout=15)
        for proc in self.processes.values():
            if proc.poll() is None:
                with _suppress_missing():
                    os.killpg(proc.pid, signal.SIGKILL)
        for p in alive:
            with _suppress_missing():
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        for proc in self.processes.values():
            proc.wait(timeout=5)


class _suppress_missing:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        return kind is not None and issubclass(kind, (ProcessLookupError, psutil.NoSuchProcess, PermissionError))
