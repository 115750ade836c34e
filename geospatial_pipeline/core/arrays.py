"""Names for the numpy array types the core passes around, so a signature says which dtype it expects:
numpy converts and numba compiles a new specialisation for whatever dtype comes, so mypy is where a wrong
one shows."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Bools: TypeAlias = npt.NDArray[np.bool_]
Bytes: TypeAlias = npt.NDArray[np.uint8]  # raw text as bytes
Int8s: TypeAlias = npt.NDArray[np.int8]
Int32s: TypeAlias = npt.NDArray[np.int32]
Int64s: TypeAlias = npt.NDArray[np.int64]
UInt64s: TypeAlias = npt.NDArray[np.uint64]
Float64s: TypeAlias = npt.NDArray[np.float64]
Objects: TypeAlias = npt.NDArray[np.object_]
Datetimes: TypeAlias = npt.NDArray[np.datetime64]  # datetime64[D] dates or [us] instants, as named
Strs: TypeAlias = npt.NDArray[np.str_]
