"""Build an ONNX graph of an MPNet encoder (as in sentence-transformers/all-mpnet-base-v2)
straight from its safetensors weights, with the ``onnx`` package's helper API: no torch.

The graph mirrors Hugging Face's ``MPNetModel`` in inference mode:
inputs ``input_ids`` / ``attention_mask`` (int64, [batch, seq]), output ``last_hidden_state``
(float32, [batch, seq, hidden]).
"""

import math
from dataclasses import dataclass

import numpy as np

# Only imported to prepare the model: loading a prepared model never needs `onnx`.
import onnx
from onnx import TensorProto

from .transformer_onnx import GraphBuilder, finish_model


@dataclass(frozen=True)
class MPNetConfig:
    hidden_size: int = 768
    num_heads: int = 12
    num_layers: int = 12
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    relative_attention_num_buckets: int = 32
    # Longest input the graph accepts; the position-bias table is precomputed up to it.
    max_tokens: int = 384

    @classmethod
    def from_hf(cls, config: dict, max_tokens: int) -> "MPNetConfig":
        return cls(
            hidden_size=config["hidden_size"],
            num_heads=config["num_attention_heads"],
            num_layers=config["num_hidden_layers"],
            intermediate_size=config["intermediate_size"],
            layer_norm_eps=config["layer_norm_eps"],
            pad_token_id=config["pad_token_id"],
            relative_attention_num_buckets=config["relative_attention_num_buckets"],
            max_tokens=max_tokens,
        )


def relative_position_buckets(length: int, num_buckets: int = 32, max_distance: int = 128):
    """Hugging Face's ``MPNetEncoder.relative_position_bucket`` for every (query, key) pair,
    computed in float32 as torch does so bucket edges agree."""
    context = np.arange(length, dtype=np.int64)[:, None]
    memory = np.arange(length, dtype=np.int64)[None, :]
    n = -(memory - context)
    half = num_buckets // 2
    buckets = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    is_small = n < max_exact
    with np.errstate(divide="ignore"):
        scaled = (
            np.log(n.astype(np.float32) / np.float32(max_exact))
            / np.float32(math.log(max_distance / max_exact))
            * np.float32(half - max_exact)
        )
    large = max_exact + np.where(is_small, 0, scaled).astype(np.int64)
    large = np.minimum(large, half - 1)
    return buckets + np.where(is_small, n, large)


def build_mpnet_graph(weights: dict[str, np.ndarray], config: MPNetConfig) -> onnx.ModelProto:
    g = GraphBuilder(weights, config.layer_norm_eps)
    hidden, heads = config.hidden_size, config.num_heads
    head_size = hidden // heads
    w = g.w

    # Embeddings: word + position; positions count non-pad tokens from pad_token_id + 1.
    pad = g.const("pad_token_id", np.array(config.pad_token_id, dtype=np.int64))
    not_pad = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", pad])])], to=TensorProto.INT64)
    one_axis = g.const("axis_1", np.array(1, dtype=np.int64))
    positions = g.op("Add", [g.op("Mul", [g.op("CumSum", [not_pad, one_axis]), not_pad]), pad])
    word_table = g.const("word_embeddings", w("embeddings.word_embeddings.weight"))
    position_table = g.const("position_embeddings", w("embeddings.position_embeddings.weight"))
    x = g.op(
        "Add",
        [g.op("Gather", [word_table, "input_ids"]), g.op("Gather", [position_table, positions])],
    )
    x = g.layer_norm(x, "embeddings.LayerNorm")

    # One additive bias for every layer: relative-position bias [heads, S, S] sliced from a
    # precomputed table, plus a large negative value on padded keys.
    buckets = relative_position_buckets(config.max_tokens, config.relative_attention_num_buckets)
    bias_table = w("encoder.relative_attention_bias.weight")[buckets].transpose(2, 0, 1)
    seq_len = g.op(
        "Gather",
        [g.op("Shape", ["input_ids"]), g.const("dim_1", np.array([1], dtype=np.int64))],
    )
    zeros = g.const("zeros_2", np.array([0, 0], dtype=np.int64))
    axes = g.const("axes_1_2", np.array([1, 2], dtype=np.int64))
    position_bias = g.op(
        "Slice",
        [
            g.const("relative_position_bias", bias_table),
            zeros,
            g.op("Concat", [seq_len, seq_len], axis=0),
            axes,
        ],
    )
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    one = g.const("one", np.array(1.0, dtype=np.float32))
    min_value = g.const("min_value", np.array(np.finfo(np.float32).min, dtype=np.float32))
    mask_bias = g.op("Mul", [g.op("Sub", [one, mask]), min_value])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.const("axes_1_2b", np.array([1, 2], np.int64))])
    attention_bias = g.op("Add", [position_bias, mask_bias])  # [B, heads, S, S]

    split_heads = g.const("split_heads", np.array([0, 0, heads, head_size], dtype=np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    half, sqrt_half = g.gelu_constants()

    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        # Scaling q by 1/sqrt(head_size) (a power of two here) equals scaling the scores.
        q = g.linear(x, f"{p}.attention.attn.q", scale=1 / math.sqrt(head_size))
        k = g.linear(x, f"{p}.attention.attn.k")
        v = g.linear(x, f"{p}.attention.attn.v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k]), attention_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attended = g.linear(context, f"{p}.attention.attn.o")
        x = g.layer_norm(g.op("Add", [attended, x]), f"{p}.attention.LayerNorm")
        gelu = g.erf_gelu(g.linear(x, f"{p}.intermediate.dense"), one, half, sqrt_half)
        out = g.linear(gelu, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), f"{p}.output.LayerNorm")

    return finish_model(
        g,
        x,
        graph_name="mpnet_encoder",
        input_names=["input_ids", "attention_mask"],
        hidden_size=hidden,
    )
