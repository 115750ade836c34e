"""The compiled kernels a pod starts with: built once by the warm-up into the folder NUMBA_CACHE_DIR names
(the image's build stage), copied as the image's entrypoint copies them, and loaded from the copy by a new
process without compiling. Nothing in the package configures numba: the environment does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import json
from geospatial_pipeline.core import collection, kernels_warmup, scan
from geospatial_pipeline.core.geometry import kernels, measures
kernels_warmup.main()
entry = [scan._records, collection._collection, measures._rings, kernels.star_rings, kernels.ring_orientation]
print(json.dumps({"hits": sum(sum(k.stats.cache_hits.values()) for k in entry),
                  "misses": sum(sum(k.stats.cache_misses.values()) for k in entry)}))
"""


def _run(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(cache), "NUMBA_CPU_NAME": "generic"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_warm_up_fills_the_cache_a_new_process_then_loads_without_compiling(tmp_path):
    shipped, copy = tmp_path / "venv" / "numba-cache", tmp_path / "tmp" / "numba-cache"
    built = _run(shipped)  # the image build
    assert built["misses"] > 0
    files = sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    assert any(f.suffix == ".nbc" for f in files)

    shutil.copytree(shipped, copy)  # the entrypoint's copy into the pod's writable /tmp
    started = _run(copy)
    assert started["misses"] == 0 and started["hits"] >= 5


def test_importing_the_package_leaves_numba_as_the_environment_set_it():
    program = (
        "import numba, geospatial_pipeline.core.scan, geospatial_pipeline.core.geometry.checks; "
        "print(numba.config.CACHE_DIR)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    out = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
