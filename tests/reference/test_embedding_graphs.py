"""The ONNX graph builders (BERT for moss-minilm, MPNet for moss-mediumlm) on tiny random
weights, against a float64 numpy forward pass of the Hugging Face models they mirror."""

import math

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("onnx", reason="the graph builders need the onnx package")

from reference.embeddings.bert_onnx import BertConfig, build_bert_graph
from reference.embeddings.mpnet_onnx import (
    MPNetConfig,
    build_mpnet_graph,
    relative_position_buckets,
)

VOCAB = 40
MAX_POSITIONS = 24
_erf = np.vectorize(math.erf)


def _random_layers(rng: np.random.Generator, prefix_names: dict[str, str], cfg) -> dict:
    """Weights of ``cfg.num_layers`` encoder layers, named as in the Hugging Face checkpoint."""
    h, f = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "query": (h, h),
        "key": (h, h),
        "value": (h, h),
        "attention_out": (h, h),
        "intermediate": (f, h),
        "output": (h, f),
    }
    weights = {}
    for i in range(cfg.num_layers):
        for role, name in prefix_names.items():
            prefix = f"encoder.layer.{i}.{name}"
            if role.endswith("norm"):
                weights[f"{prefix}.weight"] = 1 + 0.1 * rng.standard_normal(h)
                weights[f"{prefix}.bias"] = 0.1 * rng.standard_normal(h)
            else:
                out_size, in_size = shapes[role]
                weights[f"{prefix}.weight"] = rng.standard_normal((out_size, in_size)) / math.sqrt(
                    in_size
                )
                weights[f"{prefix}.bias"] = 0.1 * rng.standard_normal(out_size)
    return weights


def _f32(weights: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}


def _layer_norm(x: np.ndarray, weights: dict, prefix: str, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weights[f"{prefix}.weight"] + weights[f"{prefix}.bias"]


def _linear(x: np.ndarray, weights: dict, prefix: str) -> np.ndarray:
    return x @ weights[f"{prefix}.weight"].T + weights[f"{prefix}.bias"]


def _encoder(
    x: np.ndarray,
    mask: np.ndarray,
    weights: dict,
    names: dict[str, str],
    cfg,
    position_bias: np.ndarray | None = None,
) -> np.ndarray:
    """Post-LayerNorm transformer layers in float64, as Hugging Face computes them."""
    batch, seq, hidden = x.shape
    heads = cfg.num_heads
    size = hidden // heads
    key_bias = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
    for i in range(cfg.num_layers):
        p = {role: f"encoder.layer.{i}.{name}" for role, name in names.items()}

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(_linear(x, weights, p[r])) for r in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + key_bias
        if position_bias is not None:
            scores = scores + position_bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        attended = _linear(context, weights, p["attention_out"])
        x = _layer_norm(attended + x, weights, p["attention_norm"], cfg.layer_norm_eps)
        inner = _linear(x, weights, p["intermediate"])
        gelu = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2)))
        out = _linear(gelu, weights, p["output"])
        x = _layer_norm(out + x, weights, p["output_norm"], cfg.layer_norm_eps)
    return x


def _inputs(rng: np.random.Generator, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A right-padded batch: full length, half length and a single token."""
    lengths = [MAX_POSITIONS - 4, 9, 1]
    seq = max(lengths)
    ids = np.full((len(lengths), seq), pad_id, dtype=np.int64)
    mask = np.zeros((len(lengths), seq), dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(2, VOCAB, length)
        mask[row, :length] = 1
    return ids, mask


def _run(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["last_hidden_state"], feeds)[0]


def _assert_close_on_tokens(actual: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> None:
    # Padded positions are never pooled, so only real tokens have to agree.
    valid = mask.astype(bool)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual[valid], expected[valid], atol=1e-5, rtol=1e-5)


BERT_NAMES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_out": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}


def test_bert_graph_matches_numpy_forward() -> None:
    cfg = BertConfig(hidden_size=16, num_heads=4, num_layers=2, intermediate_size=32)
    rng = np.random.default_rng(0)
    weights = _random_layers(rng, BERT_NAMES, cfg)
    weights |= {
        "embeddings.word_embeddings.weight": rng.standard_normal((VOCAB, 16)),
        "embeddings.position_embeddings.weight": rng.standard_normal((MAX_POSITIONS, 16)),
        "embeddings.token_type_embeddings.weight": rng.standard_normal((2, 16)),
        "embeddings.LayerNorm.weight": 1 + 0.1 * rng.standard_normal(16),
        "embeddings.LayerNorm.bias": 0.1 * rng.standard_normal(16),
    }
    weights = _f32(weights)
    ids, mask = _inputs(rng, pad_id=0)
    token_types = np.zeros_like(ids)
    token_types[0, 5:] = 1  # the graph must read token types, not assume zeros

    ref = {name: value.astype(np.float64) for name, value in weights.items()}
    seq = ids.shape[1]
    x = (
        ref["embeddings.word_embeddings.weight"][ids]
        + ref["embeddings.position_embeddings.weight"][:seq]
        + ref["embeddings.token_type_embeddings.weight"][token_types]
    )
    x = _layer_norm(x, ref, "embeddings.LayerNorm", cfg.layer_norm_eps)
    expected = _encoder(x, mask, ref, BERT_NAMES, cfg)

    model = build_bert_graph(weights, cfg)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": token_types}
    _assert_close_on_tokens(_run(model, feeds), expected, mask)
    # A row padded inside a batch gives the same vectors as that row alone.
    alone = {name: value[1:2, :9] for name, value in feeds.items()}
    np.testing.assert_allclose(_run(model, alone)[0], _run(model, feeds)[1, :9], atol=1e-5)


def test_bert_config_from_hf_rejects_what_the_graph_does_not_build() -> None:
    config = {
        "hidden_size": 384,
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "intermediate_size": 1536,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
    }
    assert BertConfig.from_hf(config) == BertConfig()
    with pytest.raises(ValueError, match="relu"):
        BertConfig.from_hf(config | {"hidden_act": "relu"})
    with pytest.raises(ValueError, match="relative_key"):
        BertConfig.from_hf(config | {"position_embedding_type": "relative_key"})


MPNET_NAMES = {
    "query": "attention.attn.q",
    "key": "attention.attn.k",
    "value": "attention.attn.v",
    "attention_out": "attention.attn.o",
    "attention_norm": "attention.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}


def test_mpnet_graph_matches_numpy_forward() -> None:
    cfg = MPNetConfig(
        hidden_size=16, num_heads=4, num_layers=2, intermediate_size=32, max_tokens=MAX_POSITIONS
    )
    rng = np.random.default_rng(1)
    weights = _random_layers(rng, MPNET_NAMES, cfg)
    weights |= {
        "embeddings.word_embeddings.weight": rng.standard_normal((VOCAB, 16)),
        # Positions start after pad_token_id, as in the checkpoint (514 rows for 512 tokens).
        "embeddings.position_embeddings.weight": rng.standard_normal((MAX_POSITIONS + 2, 16)),
        "embeddings.LayerNorm.weight": 1 + 0.1 * rng.standard_normal(16),
        "embeddings.LayerNorm.bias": 0.1 * rng.standard_normal(16),
        "encoder.relative_attention_bias.weight": rng.standard_normal(
            (cfg.relative_attention_num_buckets, cfg.num_heads)
        ),
    }
    weights = _f32(weights)
    ids, mask = _inputs(rng, pad_id=cfg.pad_token_id)

    ref = {name: value.astype(np.float64) for name, value in weights.items()}
    seq = ids.shape[1]
    not_pad = (ids != cfg.pad_token_id).astype(np.int64)
    positions = np.cumsum(not_pad, axis=1) * not_pad + cfg.pad_token_id
    x = ref["embeddings.word_embeddings.weight"][ids]
    x = x + ref["embeddings.position_embeddings.weight"][positions]
    x = _layer_norm(x, ref, "embeddings.LayerNorm", cfg.layer_norm_eps)
    buckets = relative_position_buckets(seq, cfg.relative_attention_num_buckets)
    bias = ref["encoder.relative_attention_bias.weight"][buckets].transpose(2, 0, 1)[None]
    expected = _encoder(x, mask, ref, MPNET_NAMES, cfg, position_bias=bias)

    actual = _run(build_mpnet_graph(weights, cfg), {"input_ids": ids, "attention_mask": mask})
    _assert_close_on_tokens(actual, expected, mask)
