"""Geometry checks through the checking path (core/geometry/checks.py): reasons, repair, bounds, CRS
spellings, orientation, the target CRS and the measures of known fields."""

import json

import numpy as np
import pytest
import shapely
from pyproj import Geod

from geospatial_pipeline.core.reasons import Reason
from geospatial_pipeline.core.rules import SpatialRules
from tests.core.geometry.support import measure as geodesic_area_perimeter
from tests.core.geometry.support import run

GEOD = Geod(ellps="WGS84")


def box(lon, lat, d=0.01):
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]],
    }


def reasons_of(result, i):
    return result.reasons(i)


def test_known_field_area_within_half_a_percent_of_geod():
    # A 0.01° x 0.01° field at 50°N: pyproj.Geod gives 797,383 m² for this ring.
    result = run([(box(10.0, 50.0), "EPSG:4326")])
    expected_area, expected_perimeter = GEOD.geometry_area_perimeter(shapely.from_geojson(json.dumps(box(10, 50))))
    assert result.result.area_ha[0] == pytest.approx(abs(expected_area) / 10_000, rel=0.005)
    assert result.result.area_ha[0] == pytest.approx(79.738, rel=0.005)
    assert result.result.perimeter_m[0] == pytest.approx(expected_perimeter, rel=1e-6)


def test_utm_field_area_matches_its_planar_size():
    # 200 m x 150 m in UTM 33N near the central meridian: 3.0 ha, scale factor 0.9996 aside.
    utm = {
        "type": "Polygon",
        "coordinates": [
            [[500000, 5316000], [500200, 5316000], [500200, 5316150], [500000, 5316150], [500000, 5316000]]
        ],
    }
    result = run([(utm, "EPSG:32633")])
    assert result.problems == {}
    assert result.result.area_ha[0] == pytest.approx(3.0, rel=0.005)
    assert result.result.perimeter_m[0] == pytest.approx(700.0, rel=0.005)
    assert result.result.source_crs[0] == "EPSG:32633"


def test_target_crs_output_is_reprojected():
    rules = SpatialRules(target_crs="EPSG:3035")
    result = run([(box(10.0, 50.0), "EPSG:4326")], rules)
    x, y = shapely.get_coordinates(result.target(0))[0]
    # ETRS89-LAEA: Europe in metres, x ≈ 4.32e6, y ≈ 3.0e6 near 10°E 50°N.
    assert 4.2e6 < x < 4.5e6 and 2.9e6 < y < 3.1e6
    assert result.result.area_ha[0] == pytest.approx(79.738, rel=0.005)  # measures stay geodesic


@pytest.mark.parametrize("crs", ["EPSG:32633", "urn:ogc:def:crs:EPSG::32633", "epsg:32633"])
def test_crs_spellings_resolve_to_the_same_crs(crs):
    utm = box(500000, 5316000, 100)
    result = run([(utm, crs)])
    assert result.problems == {} and result.result.source_crs[0] == "EPSG:32633"


def test_ogc_crs84_is_lon_lat():
    result = run([(box(10.0, 50.0), "OGC:CRS84")])
    assert result.problems == {}
    assert shapely.bounds(result.lonlat(0)).tolist() == pytest.approx([10.0, 50.0, 10.01, 50.01])


@pytest.mark.parametrize(
    ("geometry", "crs", "reason"),
    [
        (None, "EPSG:4326", Reason.GEOMETRY_MISSING),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0]]]}, "EPSG:4326", Reason.GEOMETRY_UNPARSEABLE),
        ({"type": "Polygon", "coordinates": []}, "EPSG:4326", Reason.GEOMETRY_EMPTY),
        ({"type": "Point", "coordinates": [10, 50]}, "EPSG:4326", Reason.GEOMETRY_TYPE_NOT_ALLOWED),
        ({"type": "GeometryCollection", "geometries": [box(10, 50)]}, "EPSG:4326", Reason.GEOMETRY_TYPE_NOT_ALLOWED),
        (
            {"type": "Polygon", "coordinates": [[[10, 50, 1], [10.1, 50, 1], [10.1, 50.1, 1], [10, 50, 1]]]},
            "EPSG:4326",
            Reason.GEOMETRY_NOT_2D,
        ),
        (
            {"type": "Polygon", "coordinates": [[[12, 49], [12.01, 49.01], [12.01, 49], [12, 49.01], [12, 49]]]},
            "EPSG:4326",
            Reason.GEOMETRY_INVALID,
        ),
        (box(10, 50), "EPSG:999999", Reason.CRS_UNKNOWN),
        (box(10, 50), "not a crs", Reason.CRS_UNKNOWN),
        (box(500000, 5316000, 100), "EPSG:4326", Reason.OUTSIDE_CRS_AREA_OF_USE),  # UTM metres labelled degrees
        (box(-35.3, 149.1), "EPSG:4326", Reason.OUTSIDE_CRS_AREA_OF_USE),  # lat/lon swapped: latitude 149
        (box(10.0, 50.0), "EPSG:3035", Reason.OUTSIDE_CRS_AREA_OF_USE),  # degrees labelled LAEA Europe metres
    ],
)
def test_each_spatial_failure_has_its_reason(geometry, crs, reason):
    result = run([(geometry, crs), (box(10.0, 50.0), "EPSG:4326")])
    assert reasons_of(result, 0) == [reason]
    assert reasons_of(result, 1) == []  # a bad record never spoils its neighbour


def test_invalid_reason_names_the_problem():
    bowtie = {"type": "Polygon", "coordinates": [[[12, 49], [12.01, 49.01], [12.01, 49], [12, 49.01], [12, 49]]]}
    result = run([(bowtie, "EPSG:4326")])
    assert "Self-intersection" in result.problems[0][0][1]


def test_repair_invalid_makes_bow_tie_a_multipolygon_and_flags_it():
    bowtie = {"type": "Polygon", "coordinates": [[[12, 49], [12.01, 49.01], [12.01, 49], [12, 49.01], [12, 49]]]}
    result = run([(bowtie, "EPSG:4326")], SpatialRules(repair_invalid=True))
    assert result.problems == {}
    assert result.result.repaired[0]
    assert shapely.get_type_id(result.target(0)) == 6
    assert shapely.is_valid(result.target(0))


def test_configured_bounds_narrow_the_world():
    rules = SpatialRules(bounds=(-25.0, 34.0, 45.0, 72.0))
    result = run([(box(10.0, 50.0), "EPSG:4326"), (box(-47.9, -15.8), "EPSG:4326")], rules)
    assert reasons_of(result, 0) == [] and reasons_of(result, 1) == [Reason.OUTSIDE_BOUNDS]


def test_too_many_vertices_is_rejected():
    ring = [[10 + 0.001 * np.cos(t), 50 + 0.001 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 50)]
    ring[-1] = ring[0]
    result = run([({"type": "Polygon", "coordinates": [ring]}, "EPSG:4326")], SpatialRules(max_vertices=20))
    assert reasons_of(result, 0) == [Reason.TOO_MANY_VERTICES]


def test_exterior_rings_come_out_counterclockwise():
    clockwise = {"type": "Polygon", "coordinates": [[[10, 50], [10, 50.01], [10.01, 50.01], [10.01, 50], [10, 50]]]}
    result = run([(clockwise, "EPSG:4326")])
    assert shapely.is_ccw(shapely.get_exterior_ring(result.target(0)))


def test_antimeridian_crossing_field_measures_via_geod():
    crossing = {
        "type": "Polygon",
        "coordinates": [[[179.99, 10], [-179.99, 10], [-179.99, 10.01], [179.99, 10.01], [179.99, 10]]],
    }
    area, perimeter = geodesic_area_perimeter(np.array([shapely.from_geojson(json.dumps(crossing))]))
    # 0.02° x 0.01° at 10°N ≈ 2.19 km x 1.11 km, not a band around the globe.
    assert area[0] / 10_000 == pytest.approx(242.5, rel=0.01)
    assert perimeter[0] == pytest.approx(6598, rel=0.01)


def test_multipolygon_with_hole_area_and_perimeter():
    mp = {
        "type": "MultiPolygon",
        "coordinates": [
            [
                [[11.0, 48.0], [11.02, 48.0], [11.02, 48.02], [11.0, 48.02], [11.0, 48.0]],
                [[11.005, 48.005], [11.005, 48.01], [11.01, 48.01], [11.01, 48.005], [11.005, 48.005]],
            ],
            [[[11.03, 48.0], [11.04, 48.0], [11.04, 48.01], [11.03, 48.01], [11.03, 48.0]]],
        ],
    }
    result = run([(mp, "EPSG:4326")])
    shape = shapely.from_geojson(json.dumps(mp))
    area, _ = GEOD.geometry_area_perimeter(shape)
    assert result.result.area_ha[0] == pytest.approx(abs(area) / 10_000, rel=1e-4)
    # perimeter_m is the geodesic length of every ring, holes included (Geod's own perimeter omits holes)
    assert result.result.perimeter_m[0] == pytest.approx(GEOD.geometry_length(shape.boundary), rel=1e-6)
