"""Vectors for custom-embedding tests, and the checksum the mock cloud reports for each.

Every value here is exactly representable in float32, so what a test passes in is bit for bit
what a conforming SDK stores, and checksums can be compared exactly.
"""

import hashlib
import math
import struct
from collections.abc import Sequence


def basis(i: int, dim: int = 8) -> list[float]:
    """The ``i``-th unit vector: orthogonal to every other ``basis(j, dim)``."""
    if not 0 <= i < dim:
        raise ValueError(f"basis: index {i} out of range for dimension {dim}")
    return [1.0 if k == i else 0.0 for k in range(dim)]


def blend(*weighted: tuple[float, Sequence[float]]) -> list[float]:
    """``sum(w * v)``, e.g. ``blend((0.75, basis(0)), (0.25, basis(1)))``."""
    dim = len(weighted[0][1])
    return [sum(w * v[k] for w, v in weighted) for k in range(dim)]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def float32_bytes(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def checksum(vector: Sequence[float]) -> str:
    """sha256 hex of the float32 little-endian bytes: what the cloud's state reports."""
    return hashlib.sha256(float32_bytes(vector)).hexdigest()
