"""The push body goes out in small pieces (a single large write is quadratic in httpcore)."""

from reference.transport import _Chunks


def test_push_body_is_sent_in_small_re_iterable_pieces() -> None:
    data = bytes(range(256)) * 20_000  # 5.1 MB
    chunks = _Chunks(data)
    first = list(chunks)
    assert b"".join(first) == data
    assert max(len(c) for c in first) <= 1 << 20
    assert list(chunks) == first  # a retry after a refreshed token sends the same bytes
