"""export/styles.py: one default QGIS style per layer, stored as QGIS stores them (the QGIS test applies
and renders them: tests/integration/test_qgis_export.py)."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import geopandas
import pyogrio
import pytest
import shapely

from geospatial_pipeline.export.styles import DESCRIPTIONS, add_default_styles, qml

LAYERS = ["fields", "late_fields", "rejected_records"]


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_has_a_qgis_style_document(layer):
    root = ET.fromstring(qml(layer))
    assert root.tag == "qgis"
    renderer = root.find("renderer-v2")
    assert renderer is not None and renderer.find("symbols") is not None
    assert root.find("labeling") is not None  # field_id / run / reason labels at large scales


def test_the_fields_style_tells_on_time_late_and_repaired_apart():
    root = ET.fromstring(qml("fields"))
    renderer = root.find("renderer-v2")
    rules = {rule.get("key"): rule.get("filter") for rule in renderer.iter("rule")}
    assert rules == {
        "on_time": 'NOT "arrived_late" AND NOT "repaired"',
        "late": '"arrived_late" AND NOT "repaired"',
        "repaired": '"repaired"',
    }
    fills = {
        symbol.get("name"): next(o.get("value") for o in symbol.iter("Option") if o.get("name") == "color")
        for symbol in renderer.find("symbols")
    }
    symbols = {rule.get("key"): rule.get("symbol") for rule in renderer.iter("rule")}
    assert len({fills[symbols[key]] for key in rules}) == 3  # three distinct colours


def test_styles_are_written_as_default_rows_of_layer_styles(tmp_path):
    path = tmp_path / "x.gpkg"
    for layer in LAYERS:
        pyogrio.write_dataframe(
            geopandas.GeoDataFrame({"a": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:4326"),
            path,
            layer=layer,
        )
    add_default_styles(path, LAYERS, "geometry")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT f_table_name, f_geometry_column, f_table_schema, useAsDefault, styleQML, description"
            " FROM layer_styles ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == LAYERS
    assert all(r[1] == "geometry" and r[2] == "" and r[3] == 1 for r in rows)
    assert [r[4] for r in rows] == [qml(layer) for layer in LAYERS]
    assert [r[5] for r in rows] == [DESCRIPTIONS[layer] for layer in LAYERS]
