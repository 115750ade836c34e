"""Default QGIS styles, stored in the GeoPackage the way QGIS itself stores them.

QGIS keeps a layer's saved styles in a `layer_styles` table of the GeoPackage (an attributes table, id as
its primary key) and, on opening a layer, applies the row whose f_table_name and f_geometry_column
name that layer, f_table_schema is empty and useAsDefault is set. The QML of each layer is package data
(styles/*.qml), so a stock QGIS shows late and repaired fields in their colours without any set-up.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyogrio  # type: ignore[import-untyped]

from geospatial_pipeline.export import ExportError

STYLES_TABLE = "layer_styles"
DESCRIPTIONS = {
    "fields": "Published fields: green on time, orange arrived late (merged in), purple geometry repaired",
    "late_fields": "Late fields from the late batches: dashed orange outline, labelled with the detecting run",
    "rejected_records": "Quarantined records where their geometry parsed: red hatch, labelled with reason codes",
}


def qml(layer: str) -> str:
    return resources.files(__package__).joinpath("styles", f"{layer}.qml").read_text(encoding="utf-8")


def add_default_styles(path: Path, layers: list[str], geometry_column: str) -> None:
    """One default style per exported layer in the GeoPackage's `layer_styles` table (created here)."""
    count = len(layers)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = pa.string()
    table = pa.table(
        {
            "f_table_catalog": pa.array([""] * count, text),
            "f_table_schema": pa.array([""] * count, text),
            "f_table_name": pa.array(layers, text),
            "f_geometry_column": pa.array([geometry_column] * count, text),
            "styleName": pa.array(layers, text),
            "styleQML": pa.array([qml(layer) for layer in layers], text),
            "styleSLD": pa.array([""] * count, text),
            "useAsDefault": pa.array([True] * count, pa.bool_()),
            "description": pa.array([DESCRIPTIONS[layer] for layer in layers], text),
            "owner": pa.array([""] * count, text),
            "ui": pa.nulls(count, text),
            "update_time": pa.array([now] * count, pa.timestamp("ms", tz="UTC")),
        }
    )
    try:
        pyogrio.write_arrow(
            table,
            str(path),
            layer=STYLES_TABLE,
            driver="GPKG",
            layer_options={"FID": "id", "DESCRIPTION": "QGIS layer styles"},
        )
    except Exception as exc:
        raise ExportError(f"GDAL could not write the layer styles to {path}: {exc}") from exc
