"""Bad requests and broken lakes end in one clear line on stderr and a non-zero exit, never a traceback,
and leave no output file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geospatial_pipeline.export.cli import main
from geospatial_pipeline.lake import keys

SCRIPT = Path(sys.executable).parent / "geospatial-export"


def run(argv: list[str], capsys) -> tuple[int, str]:
    """main() as the console script runs it: (exit status, stderr)."""
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's usage errors
        status = stop.code
    return status, capsys.readouterr().err


def assert_one_clear_line(err: str, *words: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("geospatial-export: error: "), err
    for word in words:
        assert word in lines[-1], (word, err)


def test_the_installed_script_reports_a_missing_partition_without_a_traceback(published_lake, tmp_path):
    out = tmp_path / "x.gpkg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSPATIAL_PIPELINE_")}
    proc = subprocess.run(
        [str(SCRIPT), "--lake", str(published_lake), "--from", "2025-01-02", "--to", "2025-01-05", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert_one_clear_line(proc.stderr, "not published", "2025-01-04, 2025-01-05", "--skip-missing")
    assert proc.stdout == "" and not out.exists()


def test_skip_missing_exports_the_published_days_and_names_the_others(published_lake, tmp_path, capsys):
    out = tmp_path / "x.gpkg"
    argv = ["--lake", str(published_lake), "--from", "2025-01-02", "--to", "2025-01-05", "-o", str(out)]
    assert main([*argv, "--skip-missing"]) == 0
    printed = capsys.readouterr().out
    assert "2 partition(s), 2025-01-02..2025-01-03" in printed
    assert "not published, left out: 2025-01-04, 2025-01-05" in printed
    assert out.exists()


def test_a_range_with_nothing_published(published_lake, tmp_path, capsys):
    argv = ["--lake", str(published_lake), "--from", "2024-06-01", "--to", "2024-06-03", "--skip-missing"]
    status, err = run([*argv, "-o", str(tmp_path / "x.gpkg")], capsys)
    assert status == 1
    assert_one_clear_line(err, "no published partition between 2024-06-01 and 2024-06-03")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--from", "2025-01-03", "--to", "2025-01-01"], ["bad range", "2025-01-03", "after", "2025-01-01"]),
        (["--date", "2025-02-30"], ["not a date", "2025-02-30", "YYYY-MM-DD"]),
        (["--date", "yesterday"], ["not a date"]),
        (["--from", "2025-01-01"], ["--from needs --to"]),
        (["--date", "2025-01-01", "--to", "2025-01-02"], ["--to goes with --from"]),
        (["--date", "2025-01-01", "--format", "fgb", "-o", "x.gpkg"], ["does not match the output's suffix"]),
    ],
)
def test_bad_dates_and_options_are_usage_errors(published_lake, capsys, argv, words):
    status, err = run(["--lake", str(published_lake), *argv], capsys)
    assert status == 2
    assert "Traceback" not in err and err.splitlines()[-1].startswith("geospatial-export: error: ")
    for word in words:
        assert word in err


def test_an_unreadable_fields_object_is_named(lake_copy, tmp_path, capsys):
    broken = lake_copy / keys.fields_key("2025-01-02")
    broken.write_bytes(b"this is not parquet")
    status, err = run(["--lake", str(lake_copy), "--from", "2025-01-01", "--to", "2025-01-03"], capsys)
    assert status == 1
    assert_one_clear_line(err, "cannot read", broken.as_uri().replace("=", "%3D"))


def test_a_missing_quarantine_object_is_named(lake_copy, tmp_path, capsys):
    (lake_copy / keys.rejected_key("2025-01-03")).unlink()
    out = tmp_path / "x.gpkg"
    status, err = run(["--lake", str(lake_copy), "--date", "2025-01-03", "-o", str(out)], capsys)
    assert status == 1
    assert_one_clear_line(err, "cannot read", "rejected/2025-01-03/rejected.geojsonl", "no such object")
    assert not out.exists() and not list(tmp_path.glob(".x.*"))  # nor its scratch file


def test_a_broken_quarantine_line_is_named(lake_copy, tmp_path, capsys):
    path = lake_copy / keys.rejected_key("2025-01-02")
    path.write_bytes(path.read_bytes() + b"{not json\n")
    status, err = run(["--lake", str(lake_copy), "--date", "2025-01-02", "-o", str(tmp_path / "x.gpkg")], capsys)
    assert status == 1
    assert_one_clear_line(err, "cannot read", "rejected/2025-01-02/rejected.geojsonl", "not a quarantine record")


def test_a_broken_manifest_is_named(lake_copy, tmp_path, capsys):
    (lake_copy / keys.manifest_key("2025-01-01")).write_text("[]")
    status, err = run(["--lake", str(lake_copy), "--date", "2025-01-01", "-o", str(tmp_path / "x.gpkg")], capsys)
    assert status == 1
    assert_one_clear_line(err, "manifests/2025-01-01.json", "not a partition manifest")


def test_no_lake_folder(tmp_path, capsys):
    status, err = run(["--lake", str(tmp_path / "nowhere"), "--date", "2025-01-01"], capsys)
    assert status == 1
    assert_one_clear_line(err, "no lake folder at", "nowhere")


def test_an_existing_output_is_kept_unless_overwrite(published_lake, tmp_path, capsys):
    out = tmp_path / "x.gpkg"
    out.write_text("keep me")
    argv = ["--lake", str(published_lake), "--date", "2025-01-01", "-o", str(out)]
    status, err = run(argv, capsys)
    assert status == 1
    assert_one_clear_line(err, "exists", "--overwrite")
    assert out.read_text() == "keep me"
    assert run([*argv, "--overwrite"], capsys)[0] == 0
    assert out.read_bytes().startswith(b"SQLite format 3")


def test_an_output_folder_that_does_not_exist(published_lake, tmp_path, capsys):
    status, err = run(["--lake", str(published_lake), "--date", "2025-01-01", "-o", str(tmp_path / "a/b.gpkg")], capsys)
    assert status == 1
    assert_one_clear_line(err, "output folder", "does not exist")


def test_a_bad_bucket_name_is_a_settings_error(capsys):
    status, err = run(["--lake", "s3://No_Such_Bucket/x", "--date", "2025-01-01"], capsys)
    assert status == 1
    assert_one_clear_line(err, "s3_bucket")
