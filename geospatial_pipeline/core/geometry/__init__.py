"""Geometry of field records, as flat arrays: read (from the scan), checks, reprojection, measures, encodings."""
