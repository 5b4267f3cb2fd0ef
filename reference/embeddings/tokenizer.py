"""Loading a Hugging Face ``tokenizer.json`` with the padding and truncation an embedder needs."""

from tokenizers import Tokenizer


def configure(tokenizer: Tokenizer, *, max_tokens: int) -> Tokenizer:
    """Truncate at ``max_tokens`` and pad each batch only to its longest member.

    Exported tokenizer files often carry a fixed pad length (128 for all-MiniLM-L6-v2) which
    both wastes compute on short texts and cuts long ones below the model's real limit.
    """
    padding = tokenizer.padding or {}
    pad_id = padding.get("pad_id", 0)
    pad_token = padding.get("pad_token", "[PAD]")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer
