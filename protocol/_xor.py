"""The artifact payload's byte mask: byte i is XORed with ``0xAA ^ (i % 255)``."""

import numpy as np

_KEY = (np.arange(255, dtype=np.uint8) ^ np.uint8(0xAA)).astype(np.uint8)
# The key repeated over a ~1 MB block whose length is a multiple of 255, so every block
# starts at key phase 0: masking works block by block with no key the size of the data.
_BLOCK_KEY = np.tile(_KEY, 4096)


def xor_mask(data: bytes) -> bytes:
    """Apply (or remove: the mask is its own inverse) the payload mask."""
    src = np.frombuffer(data, dtype=np.uint8)
    out = np.empty_like(src)
    step = _BLOCK_KEY.size
    for start in range(0, src.size, step):
        end = min(start + step, src.size)
        np.bitwise_xor(src[start:end], _BLOCK_KEY[: end - start], out=out[start:end])
    return out.tobytes()
