"""Analysts open the late GeoJSON objects and the quarantine file in QGIS: load them with QGIS itself
(Debian's python3-qgis, headless), not only with our own readers."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from geospatial_pipeline.lake import keys
from geospatial_pipeline.lake.local_store import LocalStore
from geospatial_pipeline.lake.publish import run_partition

SYSTEM_PYTHON = Path("/usr/bin/python3")

QGIS_SCRIPT = r"""
import json, sys
from qgis.core import QgsApplication, QgsVectorLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
def text(value):
    # QGIS types date fields as QDate: read them the way an analyst sees them.
    return value.toString("yyyy-MM-dd") if hasattr(value, "toString") else str(value)
out = {}
for path in sys.argv[1:]:
    layer = QgsVectorLayer(path, "layer", "ogr")
    features = list(layer.getFeatures()) if layer.isValid() else []
    out[path] = {
        "valid": layer.isValid(),
        "count": layer.featureCount(),
        "crs": layer.crs().authid(),
        "fields": [f.name() for f in layer.fields()],
        "first": {k: text(v) for k, v in zip([f.name() for f in layer.fields()], features[0].attributes())} if features else {},
        "extent": [layer.extent().xMinimum(), layer.extent().yMinimum(), layer.extent().xMaximum(), layer.extent().yMaximum()],
        "geometry_types": sorted({f.geometry().wkbType() for f in features if f.hasGeometry()}),
    }
print(json.dumps(out))
sys.stdout.flush()
import os
os._exit(0)  # QgsApplication.exitQgis() segfaults headless on Debian 3.22
"""


def qgis_available() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import qgis.core"], capture_output=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.skipif(not qgis_available(), reason="QGIS (Debian python3-qgis) is not installed on this machine")
def test_qgis_opens_late_geojson_and_quarantine(lake_dir, fixture_settings, tmp_path):
    store = LocalStore(lake_dir)
    for day in ("2025-01-01", "2025-01-02"):
        run_partition(store, dt.date.fromisoformat(day), fixture_settings.rules(), target_crs="EPSG:4326")
    late = lake_dir / keys.late_object_key("2025-01-01", "F-101", ".geojson")
    rejected = lake_dir / keys.rejected_key("2025-01-01")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", QGIS_SCRIPT, str(late), str(rejected)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    layers = json.loads(proc.stdout.strip().splitlines()[-1])

    late_layer = layers[str(late)]
    assert late_layer["valid"] and late_layer["count"] == 1
    assert late_layer["crs"] == "EPSG:4326"
    assert late_layer["first"]["field_id"] == "F-101"
    assert late_layer["first"]["detected_in"] == "2025-01-02"
    assert late_layer["extent"] == pytest.approx([10.0, 51.0, 10.01, 51.01])

    quarantine = layers[str(rejected)]
    assert quarantine["valid"] and quarantine["count"] == 12
    assert {"source_key", "source_line", "reason_codes", "raw"} <= set(quarantine["fields"])
