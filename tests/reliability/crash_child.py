"""Child process of the SIGKILL tests: runs one partition and kills itself with SIGKILL at a write step.

usage: crash_child.py LAKE DATE POINT, POINT a RENAME_POINTS or a CRASH_POINTS name.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from reliability_support import CRASH_POINTS, FIXTURES, run

from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.store import OCTETS, ObjectStore, StagedWriter
from geospatial_pipeline.settings import load_settings

# Kill inside the store's own write path, between writing a temporary file (or a staged folder of late
# objects) and renaming it into place.
RENAME_POINTS = {
    "mid_geoparquet_rename": lambda dst: dst.endswith("/fields.parquet"),
    "mid_late_object_rename": lambda dst: "/late_data/" in dst and "/_batches/" not in dst,
}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillingStore(LocalStore):
    def __init__(self, root: Path, point: str):
        super().__init__(root)
        self.point = CRASH_POINTS[point]
        self.written: list[str] = []
        self.lock = threading.Lock()

    def _gate(self, key: str) -> None:
        with self.lock:
            if self.point(key, self.written):
                die()
            self.written.append(key)

    def put_bytes(self, key, data, content_type=OCTETS):
        self._gate(key)
        return super().put_bytes(key, data, content_type)

    def put_file(self, key, path, content_type=OCTETS, **options):
        self._gate(key)
        return super().put_file(key, path, content_type, **options)

    def put_many(self, items, concurrency=16, **options):
        return ObjectStore.put_many(self, items, concurrency, **options)

    def staged_writer(self):
        # Every late object through the gated puts above, one at a time (no staging folder to skip them).
        return StagedWriter(self)


def main(lake: str, date: str, point: str) -> None:
    settings = load_settings(FIXTURES / "config.yaml", local_lake_path=lake)
    if point in RENAME_POINTS:
        real_replace, real_rename = os.replace, os.rename

        def replace(src, dst, *args, **kwargs):
            if RENAME_POINTS[point](str(dst)):
                die()  # the temporary file is complete, the rename never happens
            return real_replace(src, dst, *args, **kwargs)

        def rename(src, dst, *args, **kwargs):  # a staged folder of late objects, moved into place whole
            if RENAME_POINTS[point](str(dst)):
                die()
            return real_rename(src, dst, *args, **kwargs)

        os.replace, os.rename = replace, rename
        store: LocalStore = LocalStore(lake)
    else:
        store = KillingStore(Path(lake), point)
    run(store, date, settings)
    print("the run finished without reaching its kill point", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    main(*sys.argv[1:4])
