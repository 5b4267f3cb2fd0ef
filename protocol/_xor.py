"""The artifact payload's byte mask: byte i is XORed with ``0xAA ^ (i % 255)``."""

import numpy as np

_KEY = (np.arange(255, dtype=np.uint8) ^ np.uint8(0xAA)).astype(np.uint8)


def xor_mask(data: bytes) -> bytes:
    """Apply (or remove: the mask is its own inverse) the payload mask."""
    return xor_mask_view(data).tobytes()


def xor_mask_view(data: bytes | memoryview) -> memoryview:
    """:func:`xor_mask` without the final copy: a 470 MB artifact is decoded in place."""
    src = np.frombuffer(data, dtype=np.uint8)
    out = np.empty_like(src)
    # Whole 255-byte periods as rows, so the key broadcasts over them: one vectorised pass and
    # no key the size of the data.
    full = src.size - src.size % 255
    np.bitwise_xor(src[:full].reshape(-1, 255), _KEY, out=out[:full].reshape(-1, 255))
    np.bitwise_xor(src[full:], _KEY[: src.size - full], out=out[full:])
    return memoryview(out)
