"""Fill buffers: zeroed, written front to back, backed only a step ahead of the writes; and
freed memory kept for the next request."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import buffers
from protocol.buffers import FillBuffer


@given(st.lists(st.integers(1, 3 << 20), min_size=1, max_size=8))
def test_pieces_written_front_to_back_read_back(pieces: list[int]) -> None:
    size = sum(pieces)
    fill = FillBuffer(size)
    at = 0
    for i, n in enumerate(pieces):
        fill.reserve(at + n)  # ends anywhere, not on page boundaries
        fill.map[at : at + n] = bytes([i % 251]) * n
        at += n
    at = 0
    for i, n in enumerate(pieces):
        assert fill.map[at : at + n] == bytes([i % 251]) * n
        at += n


def test_unwritten_bytes_are_zero() -> None:
    fill = FillBuffer(3 << 20)
    fill.reserve(10)
    fill.map[:10] = b"x" * 10
    assert fill.map[10:] == bytes((3 << 20) - 10)


def _resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_length_announced_but_not_sent_is_not_backed() -> None:
    before = _resident_bytes()
    fill = FillBuffer(1 << 30)
    fill.reserve(100)
    fill.map[:100] = b"x" * 100
    assert _resident_bytes() - before < 64 << 20  # one step of 8 MiB, not the 1 GiB


def test_a_kernel_without_populate_falls_back_to_page_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(buffers, "_POPULATE_WRITE", 10**6)  # no such advice: EINVAL
    fill = FillBuffer(2 << 20)
    fill.reserve(1 << 20)
    fill.map[: 1 << 20] = b"y" * (1 << 20)
    fill.reserve(2 << 20)
    assert fill.map[:] == b"y" * (1 << 20) + bytes(1 << 20)


_SECOND_BUFFER_FAULTS = """
import resource, sys
from protocol.buffers import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
first = bytearray(1 << 20)  # zeroed: every page touched
del first
before = faults()
second = bytearray(1 << 20)
print(applied, faults() - before)
"""


def second_buffer_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _SECOND_BUFFER_FAULTS, mode], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).parents[2]).stdout
    applied, faults = out.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_buffer_freed_is_reused_without_fresh_pages() -> None:
    # A 1 MB buffer is mapped on its own by default, and the next one takes fresh pages from
    # the heap; kept, the freed one is used again.
    applied, kept = second_buffer_faults("keep")
    _, default = second_buffer_faults("default")
    assert applied
    assert default >= 200  # 256 pages of 4 KB
    assert kept < default / 4
