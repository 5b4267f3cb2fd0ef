"""Where prepared model files live between processes."""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """``$SESSIONSPEC_CACHE``, else ``~/.cache/sessionspec`` (not created here)."""
    configured = os.environ.get("SESSIONSPEC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sessionspec"


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a finished preparation (its manifest is written last)."""
    return (folder / MANIFEST).is_file()


def publish(folder: Path, build: Callable[[Path], None]) -> None:
    """Run ``build`` on an empty sibling folder of ``folder``, then rename it to ``folder``.

    ``build`` must write :data:`MANIFEST` last. A crash or a concurrent process never leaves a
    half-written model where loaders look; if another process published first, its folder is
    kept and ours is dropped.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by several users
    try:
        build(work)
        try:
            os.replace(work, folder)
        except OSError:
            if not is_prepared(folder):  # another process won the race: use theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
