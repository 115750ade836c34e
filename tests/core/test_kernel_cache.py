"""The compiled kernels a pod starts with: built once into a shipped cache, copied to a writable folder
where the shipped one cannot be written, and loaded from there by every process without compiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import json, sys
from pathlib import Path
from geospatial_pipeline.core import kernel_cache
if sys.argv[3] == "read-only":
    kernel_cache._writable = lambda folder: False  # as in the image, where the virtualenv is read-only
folder = kernel_cache.configure(Path(sys.argv[1]), Path(sys.argv[2]))
from geospatial_pipeline.core import coordinates_text, kernels_warmup, measures, ring_kernels
kernels_warmup.main()
entry = [coordinates_text._read, coordinates_text._find_spans, measures._rings,
         ring_kernels.star_rings, ring_kernels.ring_orientation]
print(json.dumps({"folder": folder,
                  "hits": sum(sum(k.stats.cache_hits.values()) for k in entry),
                  "misses": sum(sum(k.stats.cache_misses.values()) for k in entry)}))
"""


def _run(shipped: Path, scratch: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(shipped), str(scratch), mode],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_shipped_cache_is_copied_where_it_can_be_written_and_loaded_without_compiling(tmp_path):
    shipped, scratch = tmp_path / "venv" / "numba-cache", tmp_path / "tmp" / "cache"
    shipped.mkdir(parents=True)

    built = _run(shipped, scratch, "writable")  # the image build: compiled into the shipped folder
    assert built["folder"] == str(shipped) and built["misses"] > 0
    files = sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    assert any(f.suffix == ".nbc" for f in files) and not scratch.exists()

    started = _run(shipped, scratch, "read-only")  # a pod: the copy is used, nothing compiles
    assert started["folder"] == str(scratch)
    assert started["misses"] == 0 and started["hits"] >= 5
    assert sorted(p.relative_to(scratch) for p in scratch.rglob("*") if p.is_file()) == files


def test_without_a_shipped_cache_numba_keeps_its_own(tmp_path):
    from geospatial_pipeline.core import kernel_cache

    assert kernel_cache.configure(tmp_path / "absent", tmp_path / "scratch") in (
        None,
        os.environ.get("NUMBA_CACHE_DIR"),
    )
    assert not (tmp_path / "scratch").exists()


def test_a_temp_folder_that_cannot_be_written_leaves_numba_to_itself(tmp_path, monkeypatch):
    import numba

    from geospatial_pipeline.core import kernel_cache

    shipped = tmp_path / "numba-cache"
    (shipped / "core_x").mkdir(parents=True)
    (shipped / "core_x" / "k.nbi").write_bytes(b"index")
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")  # the scratch folder would have to be made inside a file
    monkeypatch.setattr(kernel_cache, "_writable", lambda folder: False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    assert kernel_cache.configure(shipped, blocked / "cache") is None
    assert numba.config.CACHE_DIR == ""
