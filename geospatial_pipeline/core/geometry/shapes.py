"""Geometries of a chunk as flat arrays: every type in one layout, built from what scan.py read.

Each geometry has parts, each part paths (a polygon's rings, a line, or a point's single position), each
path vertices: the layout of a MultiPolygon, which every other type fits (a Polygon is one part, a
LineString one part with one path, a Point one path of one vertex, a MultiPoint one part whose paths are
single vertices, a MultiLineString one part whose paths are its lines). Every check, the reprojection and
the measures run on these arrays; shapely objects are made from them only where GEOS has to decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geospatial_pipeline.core import geometry_scan
from geospatial_pipeline.core.arrays import Bools, Float64s, Int8s, Int32s, Int64s, Objects

POINT, LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON, COLLECTION = range(7)
TYPE_NAMES = geometry_scan.TYPE_NAMES
POLYGONAL = (POLYGON, MULTIPOLYGON)
# How deep a type's coordinates nest, counting the position's own array.
DEPTH = np.array([1, 2, 3, 2, 3, 4, -1])
_SHAPELY_TYPES = {
    POINT: shapely.GeometryType.POINT,
    LINESTRING: shapely.GeometryType.LINESTRING,
    POLYGON: shapely.GeometryType.POLYGON,
    MULTIPOINT: shapely.GeometryType.MULTIPOINT,
    MULTILINESTRING: shapely.GeometryType.MULTILINESTRING,
    MULTIPOLYGON: shapely.GeometryType.MULTIPOLYGON,
}


def offsets_of(counts: Int64s) -> Int64s:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def ranges(starts: Int64s, ends: Int64s) -> Int64s:
    """The concatenation of arange(s, e) for each pair, without a Python loop."""
    counts = np.asarray(ends, dtype=np.int64) - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets_of(counts)[:-1], counts)


def any_per(flags: Bools, offsets: Int64s) -> Bools:
    """Per group of `flags` (given by offsets): is any set? Empty groups are not; reduceat runs over the
    non-empty ones only, whose starts rise strictly, so each sums exactly its own flags."""
    nonempty = np.diff(offsets) > 0
    out = np.zeros(len(nonempty), dtype=bool)
    if nonempty.any():
        out[nonempty] = np.add.reduceat(flags.astype(np.int64), offsets[:-1][nonempty]) > 0
    return out


@dataclass
class Shapes:
    """Geometries of any type; `index` is each one's record in the chunk."""

    index: Int64s
    kind: Int8s  # type code per geometry (POINT ... MULTIPOLYGON)
    coords: Float64s  # (V, 2)
    path_offsets: Int64s  # paths -> vertices
    part_offsets: Int64s  # parts -> paths
    geom_offsets: Int64s  # geometries -> parts

    def __len__(self) -> int:
        return len(self.index)

    @property
    def vertex_offsets(self) -> Int64s:
        """geometries -> vertices."""
        return self.path_offsets[self.part_offsets[self.geom_offsets]]

    @property
    def path_geometry(self) -> Int64s:
        """The geometry of each path."""
        part_geometry = np.repeat(np.arange(len(self)), np.diff(self.geom_offsets))
        return np.repeat(part_geometry, np.diff(self.part_offsets))

    @property
    def rings(self) -> tuple[Bools, Bools]:
        """Paths that are polygon rings (a flag per path), and which of them are exteriors."""
        ring = np.isin(self.kind, POLYGONAL)[self.path_geometry]
        exterior = np.zeros(len(ring), dtype=bool)
        exterior[self.part_offsets[:-1][np.diff(self.part_offsets) > 0]] = True
        return ring, exterior & ring

    def take(self, rows: Int64s) -> Shapes:
        """The geometries at positions `rows`, offsets renumbered."""
        if len(rows) == len(self) and (len(rows) < 2 or bool((rows[1:] > rows[:-1]).all())):
            return self  # every one of them, in order
        parts = ranges(self.geom_offsets[rows], self.geom_offsets[rows + 1])
        paths = ranges(self.part_offsets[parts], self.part_offsets[parts + 1])
        verts = ranges(self.path_offsets[paths], self.path_offsets[paths + 1])
        return Shapes(
            self.index[rows],
            self.kind[rows],
            self.coords[verts],
            offsets_of(np.diff(self.path_offsets)[paths]),
            offsets_of(np.diff(self.part_offsets)[parts]),
            offsets_of(np.diff(self.geom_offsets)[rows]),
        )

    def with_coords(self, coords: Float64s) -> Shapes:
        return Shapes(self.index, self.kind, coords, self.path_offsets, self.part_offsets, self.geom_offsets)

    def to_shapely(self) -> Objects:
        """Shapely geometries of the same types over the same coordinates."""
        out = np.empty(len(self), dtype=object)
        for kind in np.unique(self.kind).tolist():
            rows = np.flatnonzero(self.kind == kind)
            sub = self if len(rows) == len(self) else self.take(rows)
            out[rows] = shapely.from_ragged_array(_SHAPELY_TYPES[kind], sub.coords, sub._ragged_offsets(kind))
        return out

    def _ragged_offsets(self, kind: int) -> tuple[Int64s, ...] | None:
        """shapely.from_ragged_array's offsets for geometries all of type `kind`."""
        if kind == POINT:
            return None
        if kind in (LINESTRING, MULTIPOINT):
            return (self.vertex_offsets,)
        if kind == POLYGON:
            return (self.path_offsets, self.part_offsets)
        if kind == MULTILINESTRING:
            return (self.path_offsets, self.part_offsets[self.geom_offsets])
        return (self.path_offsets, self.part_offsets, self.geom_offsets)

    @staticmethod
    def concat(blocks: list[Shapes]) -> Shapes:
        """Blocks of geometries as one, sorted by record."""
        blocks = [b for b in blocks if len(b)] or blocks[:1] or [empty()]
        if len(blocks) == 1:
            joined = blocks[0]
        else:

            def chained(name: str, sizes: list[int]) -> Int64s:
                arrays = [getattr(b, name) for b in blocks]
                base = np.cumsum([0, *sizes]).tolist()
                return np.concatenate([arrays[0]] + [a[1:] + base[k] for k, a in enumerate(arrays[1:], start=1)])

            joined = Shapes(
                np.concatenate([b.index for b in blocks]),
                np.concatenate([b.kind for b in blocks]),
                np.concatenate([b.coords for b in blocks]),
                chained("path_offsets", [len(b.coords) for b in blocks]),
                chained("part_offsets", [len(b.path_offsets) - 1 for b in blocks]),
                chained("geom_offsets", [len(b.part_offsets) - 1 for b in blocks]),
            )
        if len(joined) > 1 and not (np.diff(joined.index) > 0).all():
            joined = joined.take(np.argsort(joined.index, kind="stable"))
        return joined


def empty() -> Shapes:
    zero = np.zeros(1, dtype=np.int64)
    return Shapes(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((0, 2)), zero, zero, zero)


def from_shapely(geometries: Objects, index: Int64s) -> Shapes:
    """Shapes of shapely geometries (a repair's output), 2D, record indices `index`."""
    blocks = []
    kinds = shapely.get_type_id(geometries)
    for type_id in np.unique(kinds).tolist():
        rows = np.flatnonzero(kinds == type_id)
        kind = {0: POINT, 1: LINESTRING, 3: POLYGON, 4: MULTIPOINT, 5: MULTILINESTRING, 6: MULTIPOLYGON}[type_id]
        _, coords, offsets = shapely.to_ragged_array(geometries[rows], include_z=False)
        blocks.append(_layout(kind, index[rows], np.asarray(coords, dtype=np.float64), list(offsets)))
    return Shapes.concat(blocks)


def _layout(kind: int, index: Int64s, coords: Float64s, offsets: list[Int32s]) -> Shapes:
    """Shapes of one type from shapely's ragged offsets (innermost first)."""
    n = len(index)
    ones = np.arange(n + 1, dtype=np.int64)
    kinds = np.full(n, kind, dtype=np.int8)
    if kind == POINT:
        return Shapes(index, kinds, coords, ones, ones, ones)
    if kind in (LINESTRING, MULTIPOINT):
        (vertex,) = offsets
        if kind == LINESTRING:
            return Shapes(index, kinds, coords, vertex.astype(np.int64), ones, ones)
        return Shapes(index, kinds, coords, np.arange(len(coords) + 1), vertex.astype(np.int64), ones)
    if kind == POLYGON:
        path, part = offsets
        return Shapes(index, kinds, coords, path.astype(np.int64), part.astype(np.int64), ones)
    if kind == MULTILINESTRING:
        path, geom = offsets
        return Shapes(index, kinds, coords, path.astype(np.int64), geom.astype(np.int64), ones)
    path, part, geom = offsets
    return Shapes(index, kinds, coords, path.astype(np.int64), part.astype(np.int64), geom.astype(np.int64))
