"""Checks on embedding matrices that both sides of the wire apply."""

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


def as_matrix(rows: object, *, dimension: int | None = None, field: str = "embedding") -> Matrix:
    """Convert ``rows`` to a C-contiguous float32 matrix, rejecting ragged, empty-width or
    non-finite input with a ``ValueError`` that names ``field``."""
    try:
        # Converted without a target type first: numpy would read "4" as 4.0 for float32.
        given = np.asarray(rows)
        if given.dtype.kind not in "iuf" and given.size:
            raise TypeError(f"found {given.dtype.name} values")
        # Values beyond float32's range become inf, which the finiteness check below reports.
        with np.errstate(over="ignore"):
            matrix = given.astype(np.float32, copy=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{field}: vectors must be equal-length lists of numbers ({exc})"
        ) from None
    if matrix.ndim == 1 and matrix.size == 0:
        matrix = matrix.reshape(0, dimension or 0)
    if matrix.ndim != 2:
        raise ValueError(
            f"{field}: expected a list of vectors, got an array of shape {matrix.shape}"
        )
    if dimension is not None and matrix.shape[1] != dimension:
        raise ValueError(f"{field}: expected dimension {dimension}, got {matrix.shape[1]}")
    if matrix.size and not np.isfinite(matrix).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise ValueError(f"{field}[{bad}]: values must be finite (no NaN or infinity)")
    return np.ascontiguousarray(matrix)
