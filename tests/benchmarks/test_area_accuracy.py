"""benchmarks.area_accuracy: area_ha as the pipeline publishes each shared real parcel, against Geod and,
where the two part by more than 1e-7, against a 40-digit reference."""

from __future__ import annotations

import re

import pytest

from benchmarks import area_accuracy
from benchmarks.generate_real import parcels_file


def test_published_areas_agree_with_geod_and_beat_it_where_they_part(capsys: pytest.CaptureFixture[str]) -> None:
    if parcels_file()[0] is None:
        pytest.skip("../shared/real-parcels is not beside this checkout")
    assert area_accuracy.main([]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1,49\d parcels published", out, re.M)
    large = re.search(r"parcels over 1,000 m² \([\d,]+\): median \S+, max (\S+)", out)
    assert large and float(large.group(1)) < 1e-7
    assert "rounding differently at 0.01 ha: 0" in out
    exact = re.search(r"area_ha within (\S+) relative .* area_ha nearer on (\d+)", out)
    beyond = int(re.search(r"beyond 1e-7 relative: (\d+)", out).group(1))
    if beyond:
        assert exact and float(exact.group(1)) < 1e-7 and int(exact.group(2)) == beyond
