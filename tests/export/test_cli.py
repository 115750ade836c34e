"""The console script as installed: its help, what it imports before it has work, its progress bar, and
reading a partition at a time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from geospatial_pipeline.export import cli, sinks
from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from tests.conftest import FIXTURE_DATES

SCRIPT = Path(sys.executable).parent / "geospatial-export"


def test_help_explains_layers_formats_and_the_lake():
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for words in (
        "--lake LAKE",
        "s3://bucket/prefix",
        "--date D",
        "--from D",
        "--to D",
        "{gpkg,fgb,parquet}",
        "fields ",
        "late_fields ",
        "rejected_records ",
        "default QGIS style",
        "GeoParquet 1.1",
        "credentials from the default AWS chain",
        "exit status",
    ):
        assert words in text, words


def test_nothing_heavy_is_imported_before_there_is_work():
    probe = (
        "import sys\n"
        "from geospatial_pipeline.export import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('dagster', 'dagster_aws', 'boto3', 'pyarrow', 'pyogrio') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_progress_bar_counts_every_row(published_lake, tmp_path, capsys):
    out = tmp_path / "x.gpkg"
    argv = ["--lake", str(published_lake), "--from", FIXTURE_DATES[0], "--to", FIXTURE_DATES[-1], "-o", str(out)]
    assert cli.main([*argv, "--progress"]) == 0
    captured = capsys.readouterr()
    rows = sum(int(line.split()[1].replace(",", "")) for line in captured.out.splitlines()[1:])
    assert re.search(rf"x\.gpkg: 100%\|.*\| {rows}(\.0)?/{rows}(\.0)? ", captured.err), captured.err
    out.unlink()
    assert cli.main([*argv, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_partitions_are_read_one_after_another_as_they_are_written(published_lake, tmp_path, monkeypatch):
    """Partition k+1's fields are not read before partition k's rows are handed to GDAL: the export holds
    one partition (one row group) at a time, however long the range."""
    events: list[tuple[str, str]] = []

    class RecordingStore(LocalStore):
        def open(self, key):
            events.append(("open", key))
            return super().open(key)

    handed_over = sinks.for_gdal

    def recording_for_gdal(table, schema, multi):
        if table.num_rows:
            events.append(("write", str(table["processing_date"][0].as_py())))
        return handed_over(table, schema, multi)

    monkeypatch.setattr(cli, "open_lake", lambda lake, config: RecordingStore(lake))
    monkeypatch.setattr(sinks, "for_gdal", recording_for_gdal)
    out = tmp_path / "x.gpkg"
    argv = ["--lake", str(published_lake), "--from", FIXTURE_DATES[0], "--to", FIXTURE_DATES[-1], "--layer", "fields"]
    assert cli.main([*argv, "-o", str(out), "--no-progress"]) == 0
    first_write = events.index(("write", FIXTURE_DATES[0]))
    reading = [e for e in events[first_write - 1 :] if e[0] == "write" or e[1].startswith("fields/")]
    expected = []
    for day in FIXTURE_DATES:
        expected += [("open", keys.fields_key(day)), ("write", day)]
    assert reading == expected


@pytest.mark.parametrize(("fmt", "name"), [("gpkg", "lake-2025-01-02.gpkg"), ("parquet", "fields-2025-01-02.parquet")])
def test_default_output_is_named_by_layer_and_dates(published_lake, tmp_path, monkeypatch, fmt, name):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--lake", str(published_lake), "--date", "2025-01-02", "--format", fmt, "--no-progress"]) == 0
    assert (tmp_path / name).is_file()
