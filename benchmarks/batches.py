"""The three batches the benchmark measures, and how each is made and run.

- default: `generate.py`, uniform synthetic records in one spelling (today's batch);
- varied: `generate_varied.py`, the same nature spelled the ways users' tools spell it, 1% bad values;
- real: `generate_real.py`, the 1,500 real parcels of `../shared/real-parcels` cycled with unique ids.

The real parcels lie on four continents, so that batch runs with bounds covering the whole world:
with the fixture bounds (Europe) a fifth of it would be rejected as outside the bounds after reading,
and the benchmark would not measure the work a global delivery costs. Everything else is the fixture
configuration, as for the other two batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import generate, generate_real, generate_varied

WORLD = {"bounds": {"min_lon": -180.0, "min_lat": -90.0, "max_lon": 180.0, "max_lat": 90.0}}


@dataclass(frozen=True)
class Batch:
    name: str
    title: str
    path: Callable[[Path, int, int], Path]
    make: Callable[..., Path]
    settings: dict = field(default_factory=dict)  # overrides of fixtures/config.yaml for the pipeline

    def source(self, cache: Path, records: int, seed: int, **options) -> Path:
        """The batch file, written once (seeded) and reused."""
        return self.make(self.path(cache, records, seed), records, seed, **options)


BATCHES = {
    "default": Batch("default", "default synthetic", generate.batch_path, generate.generate),
    "varied": Batch("varied", "spelling-varied synthetic", generate_varied.batch_path, generate_varied.generate),
    "real": Batch("real", "real-shaped", generate_real.batch_path, generate_real.generate, WORLD),
}


def selected(names: str, real_parcels: Path | None) -> tuple[list[Batch], dict[str, str]]:
    """The batches named (comma-separated) that can be built here, and why any other was skipped."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in BATCHES]
    if unknown:
        raise SystemExit(f"unknown batch {', '.join(unknown)}: choose from {', '.join(BATCHES)}")
    skipped = {}
    if "real" in wanted:
        parcels, why = generate_real.parcels_file(real_parcels)
        if parcels is None:
            skipped["real"] = f"real-shaped batch skipped: {why}"
    return [BATCHES[n] for n in wanted if n not in skipped], skipped
