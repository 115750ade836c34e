"""The lines the README's "Use the outputs" section shows, as the tests run them (test_readme_snippets.py
checks that the README shows them verbatim). Paths are relative to a folder holding the lake as `lake/`."""

EXPORT_RANGE = ".venv/bin/geospatial-export --lake lake --from 2025-01-01 --to 2025-01-03 --output fields.gpkg"
EXPORT_PARQUET = ".venv/bin/geospatial-export --lake lake --date 2025-01-02 --format parquet --layer rejected_records"

QGIS_CONSOLE = 'iface.addVectorLayer("fields.gpkg|layername=fields", "fields", "ogr")'
# GDAL's settings for an S3 that is not AWS (moto's server in the test; MinIO and the like).
VSIS3_OPTIONS = "AWS_S3_ENDPOINT=127.0.0.1:9000 AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE"
VSIS3_PATH = "/vsis3/my-bucket/my-prefix/exports/fields.gpkg"

DUCKDB_BBOX = """SELECT field_id, area_ha
FROM read_parquet('lake/fields/*/fields.parquet', hive_partitioning = true, hive_types = {'date': DATE})
WHERE date = DATE '2025-01-02'
  AND bbox.xmin >= 10.0 AND bbox.ymin >= 48.0 AND bbox.xmax <= 14.0 AND bbox.ymax <= 51.0
  AND ST_Within(geometry, ST_MakeEnvelope(10.0, 48.0, 14.0, 51.0));"""
DUCKDB_AREA = """SELECT field_id, area_ha * 1e4 AS m2, ST_Area_Spheroid(ST_FlipCoordinates(geometry)) AS geodesic_m2
FROM 'lake/fields/date=2025-01-02/fields.parquet';"""
DUCKDB_S3 = """CREATE SECRET (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1',
               ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false);"""

GEOPANDAS_PARQUET = 'fields = gpd.read_parquet("lake/fields/date=2025-01-02/fields.parquet")'
GEOPANDAS_GPKG = 'rejected = gpd.read_file("fields.gpkg", layer="rejected_records")'

ALL = [
    EXPORT_RANGE,
    EXPORT_PARQUET,
    QGIS_CONSOLE,
    VSIS3_OPTIONS,
    VSIS3_PATH,
    DUCKDB_BBOX,
    DUCKDB_AREA,
    DUCKDB_S3,
    GEOPANDAS_PARQUET,
    GEOPANDAS_GPKG,
]
