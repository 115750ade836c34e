"""core/geometry/crs.py: CRS names resolved from what users write, flat coordinates reprojected as pyproj
does, and the area-of-use test that catches mislabelled coordinates."""

import numpy as np
import pytest
from pyproj import CRS, Transformer

from geospatial_pipeline.core.geometry.crs import outside_area_of_use, resolve_crs, transform_xy, transformer


def test_reprojection_accuracy_on_the_central_meridian():
    # Easting 500000 is the central meridian (15°E) of UTM zone 33; northing 0 is the equator.
    lonlat = transform_xy(np.array([[500000.0, 0.0]]), "EPSG:32633", "EPSG:4326")
    assert lonlat[0, 0] == pytest.approx(15.0, abs=1e-9)
    assert lonlat[0, 1] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("EPSG:32633", "EPSG:32633"),
        ("urn:ogc:def:crs:EPSG::32633", "EPSG:32633"),
        ("epsg:32633", "EPSG:32633"),
        ("OGC:CRS84", "OGC:CRS84"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84"),
    ],
)
def test_spellings_resolve_to_one_name(text, name):
    crs, label = resolve_crs(text)
    assert crs is not None and label == name


def test_an_unknown_crs_says_why():
    crs, message = resolve_crs("EPSG:999999")
    assert crs is None and "999999" in message


def test_lon_lat_spellings_of_wgs84_need_no_transformer():
    assert transformer("EPSG:4326", "OGC:CRS84") is None
    assert transformer("EPSG:4326", "EPSG:4326") is None
    coords = np.array([[10.0, 50.0]])
    assert transform_xy(coords, "OGC:CRS84", "EPSG:4326") is coords


def test_flat_coordinates_match_pyproj_point_by_point():
    rng = np.random.default_rng(7)
    coords = np.column_stack([rng.uniform(300_000, 700_000, 50), rng.uniform(5_000_000, 6_000_000, 50)])
    expected = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    got = transform_xy(coords, "EPSG:32633", "EPSG:4326")
    for (x, y), (lon, lat) in zip(coords, got, strict=True):
        assert (lon, lat) == expected.transform(x, y)


def test_mislabelled_coordinates_fall_outside_the_area_of_use():
    utm = CRS.from_epsg(32633)  # 12°E-18°E, northern hemisphere, with a 2° margin
    source = np.array(
        [
            [500000.0, 5316000.0, 500200.0, 5316150.0],  # 15°E 48°N: inside
            [200000.0, 5316000.0, 200200.0, 5316150.0],  # about 11°E: beside the zone, within the margin
            [5316000.0, 500000.0, 5316150.0, 500200.0],  # easting and northing swapped
        ]
    )
    corners = transform_xy(source.reshape(-1, 2), "EPSG:32633", "EPSG:4326").reshape(-1, 4)
    bad, message = outside_area_of_use(source, corners, utm, "EPSG:32633")
    assert bad.tolist() == [False, False, True]
    assert "area of use of EPSG:32633" in message


def test_geographic_coordinates_beyond_the_globe_are_caught():
    source = np.array([[10.0, 50.0, 10.1, 50.1], [500000.0, 5316000.0, 500100.0, 5316100.0]])
    bad, message = outside_area_of_use(source, source, CRS.from_epsg(4326), "EPSG:4326")
    assert bad.tolist() == [False, True]
    assert "projected metres labelled as degrees" in message


def test_coordinates_that_cannot_be_transformed_are_outside():
    lonlat = np.array([[np.inf, 50.0, np.inf, 50.1]])
    bad, _ = outside_area_of_use(lonlat, lonlat, CRS.from_epsg(32633), "EPSG:32633")
    assert bad.tolist() == [True]
