"""Where numba keeps the compiled kernels (coordinates_text, ring_kernels).

Compiling them takes about 5 s per process, and a cluster runs every partition in a fresh pod whose worker
processes would each compile again. The image compiles them once at build time into `numba-cache` under
the virtualenv (kernels_warmup). The cluster mounts that read-only, and numba only uses a cache folder it
can write, so the first process of a pod copies the shipped files into the temp folder and every process
uses that copy. Without a shipped cache (a checkout), numba keeps its own next to the sources.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numba

SHIPPED = Path(sys.prefix) / "numba-cache"
SCRATCH = Path(tempfile.gettempdir()) / "geospatial-pipeline-numba-cache"


def configure(shipped: Path = SHIPPED, scratch: Path = SCRATCH) -> str | None:
    """Point numba at the shipped cache (or its writable copy); returns the folder, None if there is none.
    Call before the kernels are defined: numba picks a function's cache folder when it is decorated."""
    if numba.config.CACHE_DIR or not shipped.is_dir():  # set by the user, or nothing shipped
        return numba.config.CACHE_DIR or None
    try:
        folder = shipped if _writable(shipped) else _copied(shipped, scratch)
    except OSError:  # no writable temp folder: numba compiles as it would without a shipped cache
        return None
    numba.config.CACHE_DIR = str(folder)
    return str(folder)


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _copied(shipped: Path, scratch: Path) -> Path:
    """The shipped files under `scratch`, each put in place by a rename, so processes starting together
    never read a half-copied file."""
    for source in shipped.rglob("*"):
        target = scratch / source.relative_to(shipped)
        if source.is_dir() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            shutil.copy2(source, partial)
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    return scratch
