"""The artifact payload's byte mask: byte i is XORed with ``0xAA ^ (i % 255)``."""

import numpy as np

_KEY = (np.arange(255, dtype=np.uint8) ^ np.uint8(0xAA)).astype(np.uint8)
_KEY_TWICE = np.concatenate([_KEY, _KEY])  # the key from any offset is a view into this


def xor_mask(data: bytes) -> bytes:
    """Apply (or remove: the mask is its own inverse) the payload mask."""
    out = np.empty(len(data), dtype=np.uint8)
    xor_into(data, out, 0)
    return out.tobytes()


def xor_into(data: bytes | memoryview, out: np.ndarray, offset: int) -> None:
    """Mask ``data`` into ``out`` as the bytes at ``offset`` of a payload: a download is
    unmasked piece by piece as it arrives."""
    src = np.frombuffer(data, dtype=np.uint8)
    start = offset % 255
    key = _KEY_TWICE[start : start + 255]
    # Whole 255-byte periods as rows, so the key broadcasts over them: one vectorised pass and
    # no key the size of the data.
    full = src.size - src.size % 255
    np.bitwise_xor(src[:full].reshape(-1, 255), key, out=out[:full].reshape(-1, 255))
    np.bitwise_xor(src[full:], key[: src.size - full], out=out[full : src.size])
