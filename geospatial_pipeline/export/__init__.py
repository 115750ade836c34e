"""Export published partitions into one file that QGIS, DuckDB or geopandas open without knowing the lake.

`geospatial-export` (cli.py) reads a date range from the lake through the pipeline's own store, builds
the layers `fields`, `late_fields` and `rejected_records` (layers.py, quarantine.py) a partition at a
time, and writes them with GDAL (GeoPackage, FlatGeobuf) or pyarrow (GeoParquet) (sinks.py). A
GeoPackage carries a default QGIS style per layer (styles.py, styles/*.qml).
"""

LAYERS = ("fields", "late_fields", "rejected_records")


class ExportError(Exception):
    """An export that cannot be done: the message says what and where, for the person who asked."""
