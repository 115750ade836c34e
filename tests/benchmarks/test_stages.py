"""benchmarks.stages times every classify stage of a batch file's first records and prints µs per record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import stages
from benchmarks.generate import generate

STAGES = ["scan", "properties", "geometry read", "parse", "classify"]


def test_every_stage_is_timed_on_the_records_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "fields.geojsonl"
    generate(batch, 600, seed=3)
    assert stages.main([str(batch), "--records", "400"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"fields\.geojsonl: 600 records, [\d,]+ B each", out[0])  # whole chunks: all 600 are read
    timed = {line.split()[0]: float(re.search(r"([\d.]+) µs/record", line).group(1)) for line in out[1:]}
    assert list(timed) == [s.split()[0] for s in STAGES]
    assert all(value > 0 for value in timed.values())
