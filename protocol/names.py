"""Which index names the cloud accepts (PROTOCOL.md: blank, `/`, control characters and names
over 256 bytes are invalid)."""

MAX_NAME_BYTES = 256


def validate_index_name(name: object, field: str = "indexName") -> str:
    """Return ``name`` if it is a valid index name, else raise ``ValueError`` naming ``field``."""
    if not isinstance(name, str):
        raise TypeError(f"{field}: expected a string, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"{field}: must not be blank")
    if "/" in name:
        raise ValueError(f"{field}: must not contain '/' (got {name!r})")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
        raise ValueError(f"{field}: must not contain control characters (got {name!r})")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"{field}: {size} bytes, the limit is {MAX_NAME_BYTES}")
    return name
