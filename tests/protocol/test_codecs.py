"""The wire formats: every recorded sample decodes and re-encodes to the same bytes."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    IndexArtifact,
    StoredDocument,
    UploadBlob,
    decode_artifact,
    decode_documents,
    decode_upload,
    encode_artifact,
    encode_documents,
    encode_upload,
)
from protocol.push import PushBody, decode_push, encode_push

SAMPLES = Path(__file__).parent.parent / "data"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_artifact_sample_round_trips_byte_for_byte() -> None:
    raw = sample("index_artifact_demo.moss")
    artifact = decode_artifact(raw)
    assert artifact.name == "demo"
    assert artifact.model_id == "custom"
    assert artifact.doc_ids == ["d0", "d1", "d2"]
    assert artifact.embeddings.dtype == np.float32
    assert artifact.embeddings.shape == (3, 4)
    assert encode_artifact(artifact) == raw


def test_documents_sample_round_trips_byte_for_byte() -> None:
    raw = sample("index_docs_demo.json")
    docs = decode_documents(raw)
    assert [d.id for d in docs] == ["d0", "d1", "d2"]
    assert docs[2].text == "billing question about invoice"
    assert docs[0].metadata == {"k": "0"}
    assert encode_documents(docs) == raw


def test_upload_sample_round_trips_byte_for_byte() -> None:
    raw = sample("create_index_upload_mg.bin")
    blob = decode_upload(raw)
    assert [d.id for d in blob.docs] == ["m0", "m1"]
    assert blob.dimension == 4
    assert encode_upload(blob) == raw


def test_push_sample_round_trips_byte_for_byte() -> None:
    raw = sample("session_push_demo.request.json").rstrip(b"\n")
    body = decode_push(raw)
    assert body.index_name == "demo"
    assert body.model_id is None
    assert body.embeddings.dtype == np.float32
    assert encode_push(body) == raw


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
text = st.text(max_size=30)
metadata = st.none() | st.dictionaries(st.text(min_size=1, max_size=8), text, max_size=3)


@st.composite
def documents_and_vectors(draw: st.DrawFn) -> tuple[list[StoredDocument], np.ndarray]:
    ids = draw(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=8))
    dim = draw(st.integers(1, 6))
    docs = [StoredDocument(i, draw(text), draw(metadata)) for i in ids]
    rows = draw(
        st.lists(
            st.lists(finite32, min_size=dim, max_size=dim), min_size=len(ids), max_size=len(ids)
        )
    )
    return docs, np.array(rows, dtype=np.float32).reshape(len(ids), dim)


@given(documents_and_vectors())
def test_vectors_survive_every_codec_bit_for_bit(data: tuple) -> None:
    docs, vectors = data
    artifact = decode_artifact(
        encode_artifact(
            IndexArtifact("n", "custom", vectors.shape[1], vectors, [d.id for d in docs])
        )
    )
    assert artifact.embeddings.tobytes() == vectors.tobytes()
    assert decode_documents(encode_documents(docs)) == docs
    blob = decode_upload(encode_upload(UploadBlob(docs, vectors)))
    assert blob.embeddings.tobytes() == vectors.tobytes() and blob.docs == docs
    if docs:
        pushed = decode_push(encode_push(PushBody("n", None, docs, vectors)))
        assert pushed.embeddings.tobytes() == vectors.tobytes() and pushed.docs == docs


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{", "body"),
        (b'{"docs": []}', "indexName"),
        (b'{"indexName": "a/b", "docs": []}', "indexName"),
        (b'{"indexName": "  ", "docs": []}', "indexName"),
        (b'{"indexName": "x\\u0001", "docs": []}', "indexName"),
        (b'{"indexName": "x", "docs": [{"id": 3, "text": "t", "embedding": [1]}]}', "docs[0].id"),
        (b'{"indexName": "x", "docs": [{"id": "a", "text": "t"}]}', "docs[0]"),
        (
            b'{"indexName": "x", "docs": [{"id": "a", "text": "t", "embedding": [1, 2]},'
            b' {"id": "b", "text": "t", "embedding": [1]}]}',
            "docs[1].embedding",
        ),
        (
            b'{"indexName": "x", "docs": [{"id": "a", "text": "t", "embedding": [1]},'
            b' {"id": "a", "text": "t", "embedding": [1]}]}',
            "docs[1].id",
        ),
        (
            b'{"indexName": "x", "docs": [{"id": "a", "text": "t", "embedding": [1e999]}]}',
            "docs[0].embedding",
        ),
        (
            b'{"indexName": "x", "docs": [{"id": "a", "text": "t", "embedding": [1],'
            b' "metadata": {"k": [1]}}]}',
            "docs[0].metadata",
        ),
    ],
)
def test_bad_push_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_push(body)
    assert str(info.value).startswith(field), str(info.value)


def test_long_names_are_rejected_by_bytes_not_characters() -> None:
    ok = "é" * 128  # 256 bytes
    assert decode_push(f'{{"indexName": "{ok}", "docs": []}}'.encode()).index_name == ok
    with pytest.raises(ValueError, match="257 bytes"):
        decode_push(f'{{"indexName": "{ok}a", "docs": []}}'.encode())


@pytest.mark.parametrize("mangle", [lambda b: b[:10], lambda b: b"XOSS" + b[4:], lambda b: b[:-1]])
def test_truncated_or_foreign_artifacts_are_rejected(mangle) -> None:
    with pytest.raises(ValueError, match="index artifact"):
        decode_artifact(mangle(sample("index_artifact_demo.moss")))


def test_upload_length_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="upload blob"):
        decode_upload(sample("create_index_upload_mg.bin")[:-4])


def test_artifact_embeddings_are_parsed_slice_by_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    import protocol.artifact as artifact_module

    monkeypatch.setattr(artifact_module, "_SLICE_BYTES", 64)  # many slices, cut mid-row
    vectors = np.random.default_rng(3).standard_normal((50, 7)).astype(np.float32)
    raw = encode_artifact(IndexArtifact("s", "custom", 7, vectors, [f"d{i}" for i in range(50)]))
    assert decode_artifact(raw).embeddings.tobytes() == vectors.tobytes()


def test_artifact_with_fewer_embeddings_than_ids_is_rejected() -> None:
    good = IndexArtifact("s", "custom", 2, np.ones((2, 2), np.float32), ["a", "b"])
    good.doc_ids = ["a", "b", "c"]  # bypasses the constructor's check, as a bad server could
    with pytest.raises(ValueError, match="2 embeddings for 3 docIds"):
        decode_artifact(encode_artifact(good))


@pytest.mark.parametrize("size", [0, 1, 254, 255, 256, 511, 1000])
def test_payload_mask_follows_its_definition_at_every_length(size: int) -> None:
    from protocol._xor import xor_mask

    data = bytes((i * 37 + 11) % 256 for i in range(size))
    expected = bytes(b ^ (0xAA ^ (i % 255)) for i, b in enumerate(data))
    assert xor_mask(data) == expected
    assert xor_mask(expected) == data
