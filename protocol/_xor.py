"""The artifact payload's byte mask: byte i is XORed with ``0xAA ^ (i % 255)``."""

import numpy as np

_KEY = (np.arange(255, dtype=np.uint8) ^ np.uint8(0xAA)).astype(np.uint8)


def xor_mask(data: bytes) -> bytes:
    """Apply (or remove: the mask is its own inverse) the payload mask."""
    buf = np.frombuffer(data, dtype=np.uint8)
    reps = -(-buf.size // 255)
    return (buf ^ np.tile(_KEY, reps)[: buf.size]).tobytes()
