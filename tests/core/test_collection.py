"""A whole .geojson document (core/collection.py): a FeatureCollection split into its features' own texts
however it is spelled, its legacy `crs` member kept; a single Feature, anything else and broken JSON told
apart."""

from __future__ import annotations

import pytest

from geospatial_pipeline.core import collection


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (b'{"type": "Feature", "geometry": null, "properties": {}}', 2),
        (b'{"features": [], "type": "FeatureCollection"}', 1),
        (b'{"type": "FeatureCollection"}', 0),  # no features array: not one
        (b'{"type": "FeatureCollection", "features": {}}', 0),
        (b"[1, 2]", 0),
        (b'{"type": "Topology"}', 0),
    ],
)
def test_what_a_document_is(text, kind):
    found = collection.read(text)
    assert found.error is None and found.kind == kind


def test_a_document_that_is_not_json_says_where():
    found = collection.read(b'{"type": "FeatureCollection", "features": [{"type": "Feature"},]}')
    assert found.kind == 0 and len(found.starts) == 0
    assert found.error is not None and found.error.startswith("file is not JSON:")
    assert "at byte 63" in found.error
