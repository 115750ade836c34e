"""The README's "Use the outputs" lines: shown there verbatim, and run here against a published lake from
a folder that holds it as `lake/` (the QGIS and S3 lines run in test_qgis_export.py, test_export_s3.py and
test_duckdb_reads.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geospatial_pipeline.export.cli import main
from tests.conftest import REPO
from tests.export import readme_snippets as snippets
from tests.integration.test_duckdb_reads import connect


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Use the outputs")
    return text[start : text.index("\n## ", start + 1)]


@pytest.mark.parametrize("snippet", snippets.ALL, ids=lambda s: s.split("\n")[0][:40])
def test_the_readme_shows_the_line_as_tested(snippet):
    assert snippet in readme_section()


def test_the_section_sits_right_before_performance():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.index("## Use the outputs") < text.index("## Performance")
    assert "## " not in text[text.index("## Use the outputs") + 3 : text.index("## Performance")]


@pytest.fixture
def analyst_folder(published_lake, tmp_path, monkeypatch) -> Path:
    (tmp_path / "lake").symlink_to(published_lake, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_command(line: str) -> int:
    program, *argv = shlex.split(line)
    assert program == ".venv/bin/geospatial-export"
    return main([*argv, "--no-progress"])


def test_export_commands(analyst_folder):
    assert run_command(snippets.EXPORT_RANGE) == 0
    assert (analyst_folder / "fields.gpkg").is_file()
    assert run_command(snippets.EXPORT_PARQUET) == 0
    assert (analyst_folder / "rejected_records-2025-01-02.parquet").is_file()


def test_duckdb_lines(analyst_folder):
    con = connect()
    inside = con.execute(snippets.DUCKDB_BBOX).fetchall()
    frame = gpd.read_parquet("lake/fields/date=2025-01-02/fields.parquet")
    want = frame[frame.within(shapely.box(10.0, 48.0, 14.0, 51.0))]
    assert sorted(inside) == sorted(zip(want.field_id, want.area_ha, strict=True)) and inside
    areas = con.execute(snippets.DUCKDB_AREA).fetchall()
    assert len(areas) == len(frame)
    assert all(abs(published - geodesic) <= max(1e-7 * geodesic, 1e-4) for _, published, geodesic in areas)


def test_geopandas_lines(analyst_folder):
    assert run_command(snippets.EXPORT_RANGE) == 0
    names = {"gpd": gpd}
    exec(snippets.GEOPANDAS_PARQUET, names)
    exec(snippets.GEOPANDAS_GPKG, names)
    assert len(names["fields"]) == 3 and names["fields"].crs.to_epsg() == 4326
    assert len(names["rejected"]) > 0 and {"reason_codes", "raw", "source_line"} <= set(names["rejected"].columns)
