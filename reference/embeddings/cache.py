"""Where prepared model files live between processes."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SESSIONSPEC_CACHE``, else ``~/.cache/sessionspec`` (not created here)."""
    configured = os.environ.get("SESSIONSPEC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sessionspec"
