"""What one mock cloud is configured with."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30
SECRET_FILE = "secret.key"


def load_or_create_secret(data_dir: Path) -> bytes:
    """The data dir's HMAC secret, created on first use.

    It lives beside the database so that presigned URLs and tokens issued before a restart
    still verify after it, while two data dirs never accept each other's signatures.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = b""
    if len(secret) >= 32:
        return secret
    fresh = secrets.token_bytes(32)
    # O_EXCL so two servers starting on one fresh data dir agree on a single secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(fresh)
    return fresh


@dataclass
class Settings:
    data_dir: Path
    projects: dict[str, str] = field(default_factory=dict)
    control_key: str | None = None
    token_ttl_s: float = 3600
    url_ttl_s: float = 900
    # The published SDK pushes 100k docs x 384 dims as ~820 MB of JSON.
    max_body_bytes: int = GIB
    # Build each index version's download files right after the change, not at first download.
    prebuild_downloads: bool = True
    # Empty means "the data dir's persisted secret" (filled in by __post_init__).
    secret: bytes = b""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.secret:
            self.secret = load_or_create_secret(self.data_dir)
        if self.token_ttl_s <= 0 or self.url_ttl_s <= 0:
            raise ValueError("token_ttl_s and url_ttl_s must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
