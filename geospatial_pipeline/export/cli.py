"""`geospatial-export`: the console script. Arguments, the lake from the pipeline's settings, and errors
as one line on stderr (exit 1) instead of a traceback.

Nothing heavy is imported before the arguments are parsed: `--help` answers at once, and Dagster (which
the pipeline's S3 resource brings in) is imported only when a lake is opened.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from geospatial_pipeline.export import LAYERS, ExportError

PROG = "geospatial-export"
SUFFIXES = {"gpkg": ".gpkg", "fgb": ".fgb", "parquet": ".parquet"}
FORMAT_NAMES = {"gpkg": "GeoPackage", "fgb": "FlatGeobuf", "parquet": "GeoParquet"}
SINGLE_LAYER = ("fgb", "parquet")

DESCRIPTION = """\
Export published partitions of the field-boundary lake into one file that QGIS, DuckDB or geopandas
open without knowing the lake's layout.

layers:
  fields            the published rows of each date (on-time fields plus late fields merged in),
                    every column; outside GeoParquet bbox is bbox_xmin..bbox_ymax and
                    arrival_time is kept to the millisecond (GDAL's precision)
  late_fields       the late batches stored for those dates, one row per late field and detecting run
  rejected_records  the quarantine: partition_date, source_key, source_line, field_id, reason_codes,
                    reasons (JSON), raw record, and its geometry where that parsed (else empty)

formats:
  gpkg     GeoPackage (default): all three layers in one file, each with a default QGIS style
           (on time green, arrived late orange, repaired purple, quarantined red; field_id labels
           from 1:10,000 in) that QGIS applies when it opens the layer
  fgb      FlatGeobuf: one layer per file (--layer, default fields)
  parquet  GeoParquet 1.1, the lake's own columns: one layer per file (--layer, default fields)"""

EPILOG = """\
the lake:
  --lake names a local lake folder or s3://bucket/prefix. Without it the pipeline's settings say where
  the lake is (--config FILE, else GEOSPATIAL_PIPELINE_CONFIG, else /etc/dagster/config/config.yaml,
  then GEOSPATIAL_PIPELINE_* variables). S3 is read through the pipeline's own store: region, endpoint
  and retries from the same settings, credentials from the default AWS chain.

examples:
  geospatial-export --lake lake --date 2025-01-02 --output day.gpkg
  geospatial-export --lake s3://my-bucket/fields --from 2025-01-01 --to 2025-01-31 --output january.gpkg
  geospatial-export --lake lake --from 2025-01-01 --to 2025-01-03 --format parquet --layer rejected_records

exit status: 0 written; 1 the export failed (one line on stderr says why: a partition that is not
published, an object that cannot be read, an output that exists...); 2 bad arguments."""


def _date(text: str) -> dt.date:
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lake", metavar="LAKE", help="local lake folder or s3://bucket/prefix (default: settings)")
    parser.add_argument("--config", metavar="FILE", type=Path, help="the pipeline's settings file (config.yaml)")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", metavar="D", type=_date, help="one partition date, YYYY-MM-DD")
    when.add_argument("--from", dest="first", metavar="D", type=_date, help="first date of a range (with --to)")
    parser.add_argument("--to", dest="last", metavar="D", type=_date, help="last date of the range, included")
    parser.add_argument(
        "--format", choices=list(SUFFIXES), help="gpkg, fgb or parquet (default: from --output's suffix, else gpkg)"
    )
    parser.add_argument(
        "--layer",
        dest="layers",
        action="append",
        choices=LAYERS,
        help="a layer to export (repeatable; default: all three for gpkg, fields otherwise)",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        type=Path,
        help="file to write (default: lake-FROM_TO.gpkg, or LAYER-FROM_TO.fgb/.parquet, here)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    parser.add_argument(
        "--skip-missing", action="store_true", help="leave out dates that are not published instead of failing"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    return parser


def _request(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from geospatial_pipeline.export.run import ExportRequest

    if args.date is not None and args.last is not None:
        parser.error("--to goes with --from, not with --date")
    if args.first is not None and args.last is None:
        parser.error("--from needs --to (the last date, included)")
    first, last = (args.date, args.date) if args.date is not None else (args.first, args.last)
    if first > last:
        parser.error(f"bad range: --from {first} is after --to {last}")
    fmt = args.format
    suffix = args.output.suffix.lower() if args.output else ""
    by_suffix = next((name for name, s in SUFFIXES.items() if s == suffix), None)
    if fmt is None:
        fmt = by_suffix or "gpkg"
    elif by_suffix is not None and by_suffix != fmt:
        parser.error(f"--format {fmt} does not match the output's suffix {suffix!r}")
    layers = tuple(dict.fromkeys(args.layers)) if args.layers else (LAYERS if fmt == "gpkg" else ("fields",))
    if fmt in SINGLE_LAYER and len(layers) != 1:
        parser.error(f"{FORMAT_NAMES[fmt]} holds one layer per file: give one --layer")
    output = args.output
    if output is None:
        span = first.isoformat() if first == last else f"{first}_{last}"
        name = "lake" if fmt == "gpkg" else layers[0]
        output = Path(f"{name}-{span}{SUFFIXES[fmt]}")
    return ExportRequest(first, last, output, fmt, layers, args.skip_missing, args.overwrite)


def open_lake(lake: str | None, config: Path | None):
    """The pipeline's ObjectStore for `lake` (a folder or s3://bucket/prefix), or for the settings' lake."""
    from geospatial_pipeline.settings import ConfigError, load_settings

    overrides: dict = {}
    if lake and lake.startswith("s3://"):
        bucket, _, prefix = lake[len("s3://") :].partition("/")
        overrides = {"s3_bucket": bucket, "s3_prefix": prefix.strip("/")}
    elif lake:
        overrides = {"s3_bucket": None, "local_lake_path": Path(lake)}
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        raise ExportError(str(exc)) from None
    if not settings.s3_bucket and not settings.local_lake_path.is_dir():
        raise ExportError(f"no lake folder at {settings.local_lake_path.resolve()}")
    from geospatial_pipeline.defs.resources import lake_resource

    try:
        return lake_resource(settings).store()
    except Exception as exc:  # botocore refusing the endpoint, region or profile
        raise ExportError(f"cannot open the lake: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    request = _request(parser, args)
    from geospatial_pipeline.export.run import export

    try:
        store = open_lake(args.lake, args.config)
        result = export(store, request, progress=args.progress)
    except ExportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    days = result.partitions
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    print(f"wrote {result.output} ({FORMAT_NAMES[request.fmt]}, {result.crs}): {len(days)} partition(s), {span}")
    for layer, rows in result.rows.items():
        print(f"  {layer:<17} {rows:>10,} rows")
    if result.missing:
        print(f"  not published, left out: {', '.join(day.isoformat() for day in result.missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
