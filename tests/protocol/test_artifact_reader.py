"""The artifact decoded while it downloads gives what the whole file decodes to, or its error."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol.artifact as artifact_module
from protocol._xor import xor_mask
from protocol.artifact import (
    _HEADER,
    FORMAT_VERSION,
    MAGIC,
    ArtifactReader,
    IndexArtifact,
    _decode_payload,
    artifact_header,
    artifact_payload,
    encode_artifact,
)


def framed(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload)) + xor_mask(payload)


def read_in_pieces(data: bytes, cuts: list[int]) -> IndexArtifact:
    reader = ArtifactReader()
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        reader.feed(data[last:cut])
        last = max(last, cut)
    reader.feed(data[last:])
    return reader.finish()


def whole(data: bytes) -> IndexArtifact:
    """The exact path alone, on the unmasked payload."""
    return _decode_payload(xor_mask(data[_HEADER.size :]))


vectors = st.integers(1, 5).flatmap(
    lambda d: st.lists(
        st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=d,
                 max_size=d),
        min_size=1, max_size=30,
    )
)


@given(vectors, st.lists(st.integers(0, 10_000), max_size=6), st.sampled_from([8, 64, 8 << 20]))
def test_any_split_of_the_download_decodes_bit_for_bit(
    rows: list[list[float]], cuts: list[int], slice_bytes: int
) -> None:
    matrix = np.array(rows, dtype=np.float32)
    ids = [f"d{i}]]," for i in range(len(rows))]  # ids that look like row ends
    data = encode_artifact(IndexArtifact("n", "custom", matrix.shape[1], matrix, ids))
    saved, artifact_module._SLICE_BYTES = artifact_module._SLICE_BYTES, slice_bytes
    try:
        got = read_in_pieces(data, cuts)
    finally:
        artifact_module._SLICE_BYTES = saved
    assert got.embeddings.tobytes() == matrix.tobytes()
    assert got.doc_ids == ids
    assert (got.name, got.model_id, got.dimension) == ("n", "custom", matrix.shape[1])


BASE = {"name": "n", "version": "1", "model": {"id": "custom", "version": "1"}, "dimension": 2}


@pytest.mark.parametrize(
    "payload",
    [
        # embeddings after the ids, spaced out, or a decoy "embeddings" nested in another field
        {**BASE, "docIds": ["a", "b"], "embeddings": [[1, 2], [3, 4]]},
        {**BASE, "meta": {"embeddings": [[9, 9], [9, 9]]}, "embeddings": [[1, 2], [3, 4]],
         "docIds": ["a", "b"]},
        {**BASE, "embeddings": [[1, 2], [3, 4]], "docIds": ["a", "b"],
         "extra": {"embeddings": [[5, 6]]}},
    ],
)
@pytest.mark.parametrize("indent", [None, 1])
def test_other_layouts_fall_back_to_the_exact_path(payload: dict, indent: int | None) -> None:
    data = framed(json.dumps(payload, indent=indent).encode())
    got = read_in_pieces(data, [5, 40])
    assert got.embeddings.tolist() == [[1, 2], [3, 4]]
    assert got.embeddings.tobytes() == whole(data).embeddings.tobytes()


@pytest.mark.parametrize(
    ("embeddings", "error"),
    [
        ("[[1,2],[3]]", "vectors must be equal-length lists of numbers"),
        ("[[1,2],[3,true]]", "Expected `float`, got `bool`"),
        ('[[1,2],[3,"4"]]', r"Expected `float`, got `str` - at `\$\[1\]\[1\]`"),
        ("[[1,2],[3,1e39]]", "must be finite"),
        ("[[1,2]]", "1 embeddings for 2 docIds"),
        ("null", "expected a list of vectors"),
    ],
)
def test_bad_vectors_get_the_exact_paths_error(embeddings: str, error: str) -> None:
    payload = (
        '{"name":"n","version":"1","model":{"id":"custom","version":"1"},"dimension":2,'
        f'"embeddings":{embeddings},"docIds":["a","b"]}}'
    ).encode()
    with pytest.raises(ValueError, match=error):
        read_in_pieces(framed(payload), [20])


def test_short_or_long_downloads_are_rejected() -> None:
    data = encode_artifact(IndexArtifact("n", "custom", 2, np.ones((2, 2), np.float32), ["a", "b"]))
    for bad, error in [(data[:7], "shorter than its header"), (data[:-1], "found"),
                       (data + b"x", "found more")]:
        with pytest.raises(ValueError, match=error):
            read_in_pieces(bad, [3])


@given(vectors, st.sampled_from([140, 300, 8 << 20]))  # no row is longer than 140 bytes
def test_the_fast_path_reads_every_row_of_the_usual_layout(
    rows: list[list[float]], slice_bytes: int
) -> None:
    # Guards the tests above against a fast path that always declines: the exact path would
    # give the same answers.
    matrix = np.array(rows, dtype=np.float32)
    ids = [f"d{i}]]," for i in range(len(rows))]
    data = encode_artifact(IndexArtifact("n", "custom", matrix.shape[1], matrix, ids))
    saved, artifact_module._SLICE_BYTES = artifact_module._SLICE_BYTES, slice_bytes
    exact = artifact_module._embeddings
    artifact_module._embeddings = None  # type: ignore[assignment]
    try:
        got = read_in_pieces(data, [len(data) // 3, len(data) // 2])
    finally:
        artifact_module._SLICE_BYTES, artifact_module._embeddings = saved, exact
    assert got.embeddings.tobytes() == matrix.tobytes()
    assert got.doc_ids == ids


@given(
    vectors,
    st.integers(1, 7),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1),
                                         max_size=2)),
    st.dictionaries(st.sampled_from(["zeta", "alpha", "embeddingsx"]), st.text(max_size=4),
                    max_size=2),
)
def test_the_payload_in_pieces_is_the_encoded_payload(
    rows: list[list[float]], batch: int, envelope: dict | None, extra: dict
) -> None:
    matrix = np.array(rows, dtype=np.float32)
    artifact = IndexArtifact("n", "custom", matrix.shape[1], matrix,
                             [f"d{i}" for i in range(len(rows))], envelope=envelope, extra=extra)
    saved, artifact_module._BATCH_ROWS = artifact_module._BATCH_ROWS, batch
    try:
        pieces = b"".join(p.tobytes() for p in artifact_payload(artifact))
    finally:
        artifact_module._BATCH_ROWS = saved
    assert artifact_header(len(pieces)) + pieces == bytes(encode_artifact(artifact))
