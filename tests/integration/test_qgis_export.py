"""Debian's QGIS (python3-qgis 3.22, whose GDAL has no Parquet driver) opens the exported GeoPackage
headless: three layers with the lake's counts and CRS, each with the default style stored in the file,
rendered to a PNG in which the fields show in their colours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from tests.export import readme_snippets as snippets
from tests.export.lakes import GRID_DAYS, grid_lake, settings_for
from tests.integration.test_qgis_reads import SYSTEM_PYTHON, qgis_available

SCRIPT = Path(sys.executable).parent / "geospatial-export"
LAYERS = ("fields", "late_fields", "rejected_records")
# The fills of styles/fields.qml and the hatch of styles/rejected_records.qml.
COLOURS = {"on_time": (77, 175, 74), "late": (255, 127, 0), "repaired": (152, 78, 163), "rejected": (215, 25, 28)}

QGIS_SCRIPT = r"""
import json, sys
from qgis.core import (QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsRectangle,
                       QgsRenderContext, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor, QImage
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
path, png, colours, console_line = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
bare_options = QgsVectorLayer.LayerOptions()
bare_options.loadDefaultStyle = False
out, layers = {}, {}
for name in ("fields", "late_fields", "rejected_records"):
    uri = f"{path}|layername={name}"
    layer = QgsVectorLayer(uri, name, "ogr")  # as QGIS opens it: the default style from the file applied
    bare = QgsVectorLayer(uri, name, "ogr", bare_options)
    renderer = layer.renderer()
    symbols = renderer.symbols(QgsRenderContext())
    count, ids, style_names, descriptions, error = layer.listStylesInDatabase()
    out[name] = {
        "valid": layer.isValid(),
        "count": layer.featureCount(),
        "crs": layer.crs().authid(),
        "renderer": renderer.type(),
        "bare_renderer": bare.renderer().type(),
        "rules": [r.label() for r in renderer.rootRule().children()] if renderer.type() == "RuleRenderer" else [],
        "symbol_layers": [s.symbolLayer(0).layerType() for s in symbols],
        "labels": layer.labelsEnabled() and layer.labeling().settings().fieldName,
        "label_max_scale": layer.labeling().settings().minimumScale if layer.labeling() else None,
        "styles_in_file": style_names[:count],
    }
    layers[name] = layer
class ConsoleIface:  # what the README's console line calls, as QGIS's iface does it
    def addVectorLayer(self, uri, name, provider):
        layer = QgsVectorLayer(uri, name, provider)
        return layer if layer.isValid() else None
console = eval(console_line, {"iface": ConsoleIface()})
out["console"] = {"count": console.featureCount(), "renderer": console.renderer().type()} if console else None
settings = QgsMapSettings()
settings.setLayers([layers["rejected_records"], layers["late_fields"], layers["fields"]])  # top first
settings.setDestinationCrs(layers["fields"].crs())
extent = QgsRectangle(layers["fields"].extent())
for name in ("late_fields", "rejected_records"):
    extent.combineExtentWith(layers[name].extent())
extent.scale(1.05)
settings.setExtent(extent)
settings.setOutputSize(QSize(800, 600))
settings.setBackgroundColor(QColor(255, 255, 255))
job = QgsMapRendererSequentialJob(settings)
job.start()
job.waitForFinished()
image = job.renderedImage().convertToFormat(QImage.Format_RGB888)
image.save(png, "PNG")
width, height, stride = image.width(), image.height(), image.bytesPerLine()
bits = image.constBits()
bits.setsize(image.sizeInBytes())
data = bytes(bits)
counts = dict.fromkeys(colours, 0)
background = 0
for y in range(height):
    row = data[y * stride : y * stride + width * 3]
    for x in range(0, width * 3, 3):
        pixel = row[x : x + 3]
        if pixel == b"\xff\xff\xff":
            background += 1
            continue
        for key, (r, g, b) in colours.items():
            if abs(pixel[0] - r) <= 24 and abs(pixel[1] - g) <= 24 and abs(pixel[2] - b) <= 24:
                counts[key] += 1
out["image"] = {"pixels": width * height, "background": background, "colours": counts, "scale": settings.scale()}
print(json.dumps(out))
sys.stdout.flush()
import os
os._exit(0)  # QgsApplication.exitQgis() segfaults headless on Debian 3.22
"""


@pytest.mark.skipif(not qgis_available(), reason="QGIS (Debian python3-qgis) is not installed on this machine")
def test_qgis_opens_the_export_styled_and_renders_the_fields(tmp_path):
    lake = tmp_path / "lake"
    counts = grid_lake(LocalStore(lake), settings_for(lake))
    first, last = GRID_DAYS
    export = tmp_path / "grid.gpkg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSPATIAL_PIPELINE_")}
    proc = subprocess.run(
        [str(SCRIPT), "--lake", str(lake), "--from", str(first), "--to", str(last), "-o", str(export)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr

    png = tmp_path / "grid.png"
    console_line = snippets.QGIS_CONSOLE.replace('"fields.gpkg|', f'"{export}|')
    qgis_env = {**env, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", QGIS_SCRIPT, str(export), str(png), json.dumps(COLOURS), console_line],
        capture_output=True,
        text=True,
        timeout=300,
        env=qgis_env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nQGIS rendered the export to {png}: {report['image']}")

    late_rows = sum(
        pq.read_metadata(batch).num_rows
        for day in GRID_DAYS
        for batch in sorted((lake / keys.late_batches_prefix(day)).glob("*.parquet"))
    )
    expected = {
        "fields": sum(c["published_rows"] for c in counts.values()),
        "late_fields": late_rows,
        "rejected_records": sum(c["rejected"] for c in counts.values()),
    }
    assert expected == {"fields": 25, "late_fields": 5, "rejected_records": 1}  # the grid as lakes.py lays it
    for name in LAYERS:
        layer = report[name]
        assert layer["valid"] and layer["count"] == expected[name], (name, layer)
        assert layer["crs"] == "EPSG:4326", name
        assert layer["styles_in_file"] == [name], name
        assert layer["bare_renderer"] == "singleSymbol", name  # without the stored style: QGIS's default
        assert layer["label_max_scale"] == 10_000, name
    # The stored styles applied: the fields by what happened to them, the late outlines, the quarantine hatch.
    assert report["fields"]["renderer"] == "RuleRenderer"
    assert report["fields"]["rules"] == ["On time", "Arrived late, merged in", "Geometry repaired"]
    assert report["fields"]["labels"] == "field_id"
    assert report["late_fields"]["symbol_layers"] == ["SimpleLine"]
    assert report["rejected_records"]["labels"] == "reason_codes"
    # The README's line for QGIS's Python console opens the same layer, styled.
    assert report["console"] == {"count": expected["fields"], "renderer": "RuleRenderer"}

    image = report["image"]
    assert png.stat().st_size > 0
    assert image["background"] < 0.8 * image["pixels"], image  # not a blank image: the fields cover the map
    colours = image["colours"]
    assert colours["on_time"] > 40_000 and colours["late"] > 8_000, image
    assert colours["repaired"] > 1_000 and colours["rejected"] > 500, image
