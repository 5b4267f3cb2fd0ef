"""Where prepared model files live between processes."""

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .split_archive import MissingPartError

MANIFEST = "manifest.json"
T = TypeVar("T")


def cache_dir() -> Path:
    """``$SESSIONSPEC_CACHE``, else ``~/.cache/sessionspec`` (not created here)."""
    configured = os.environ.get("SESSIONSPEC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sessionspec"


def model_dir(model_id: str, weights_sha256: str, converter_version: int) -> Path:
    # The weights hash and converter version name the folder, so a changed converter never
    # reads a conversion made by older code.
    return cache_dir() / "models" / f"{model_id}-{weights_sha256[:12]}-c{converter_version}"


def prepare_once(
    folder: Path,
    lock: threading.Lock,
    locate: Callable[[], T],
    build: Callable[[T, Path], None],
    unavailable: Callable[[str], Exception],
) -> Path:
    """``folder``, built with ``build(locate(), work)`` unless already prepared: once per
    process, with a published folder from any process reused.

    ``locate`` finds the installed weights (raising :class:`MissingPartError`); a missing
    package, or a missing ``onnx`` to build with, raises ``unavailable(reason)``.
    """
    if is_prepared(folder):
        return folder
    with lock:
        if is_prepared(folder):
            return folder
        try:
            found = locate()
        except MissingPartError as exc:
            raise unavailable(f"package {exc.distribution} is missing") from exc
        try:
            import onnx  # noqa: F401
        except ImportError as exc:
            raise unavailable("package onnx is missing") from exc
        publish(folder, lambda work: build(found, work))
    return folder


def write_model(work: Path, model_bytes: bytes, manifest: dict[str, Any]) -> None:
    """``model.onnx``, then the manifest with the file's hash (last: it marks the folder
    finished)."""
    (work / "model.onnx").write_bytes(model_bytes)
    manifest = {**manifest, "model_onnx_sha256": hashlib.sha256(model_bytes).hexdigest()}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


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
