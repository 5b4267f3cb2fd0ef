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
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


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


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output


def build_mpnet_graph(weights: dict[str, np.ndarray], config: MPNetConfig) -> onnx.ModelProto:
    g = _GraphBuilder()
    hidden, heads = config.hidden_size, config.num_heads
    head_size = hidden // heads

    def w(name: str) -> np.ndarray:
        return np.asarray(weights[name], dtype=np.float32)

    def linear(x: str, prefix: str, scale: float = 1.0) -> str:
        # torch Linear stores [out, in]; MatMul wants [in, out].
        weight = g.const(f"{prefix}.weight_t", w(f"{prefix}.weight").T * np.float32(scale))
        bias = g.const(f"{prefix}.bias", w(f"{prefix}.bias") * np.float32(scale))
        return g.op("Add", [g.op("MatMul", [x, weight]), bias])

    def layer_norm(x: str, prefix: str) -> str:
        return g.op(
            "LayerNormalization",
            [
                x,
                g.const(f"{prefix}.weight", w(f"{prefix}.weight")),
                g.const(f"{prefix}.bias", w(f"{prefix}.bias")),
            ],
            axis=-1,
            epsilon=config.layer_norm_eps,
        )

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
    x = layer_norm(x, "embeddings.LayerNorm")

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
    sqrt_half = g.const("sqrt_half", np.array(1 / math.sqrt(2), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))

    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        # Scaling q by 1/sqrt(head_size) (a power of two here) equals scaling the scores.
        q = linear(x, f"{p}.attention.attn.q", scale=1 / math.sqrt(head_size))
        k = linear(x, f"{p}.attention.attn.k")
        v = linear(x, f"{p}.attention.attn.v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k]), attention_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attended = linear(context, f"{p}.attention.attn.o")
        x = layer_norm(g.op("Add", [attended, x]), f"{p}.attention.LayerNorm")
        # Exact (erf) GELU, as Hugging Face's "gelu"; onnxruntime fuses this pattern.
        inner = linear(x, f"{p}.intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [inner, sqrt_half])])
        gelu = g.op("Mul", [g.op("Mul", [inner, half]), g.op("Add", [erf, one])])
        out = linear(gelu, f"{p}.output.dense")
        x = layer_norm(g.op("Add", [out, x]), f"{p}.output.LayerNorm")

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    graph = helper.make_graph(
        g.nodes,
        "mpnet_encoder",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        outputs=[
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
            )
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sessionspec.reference.embeddings",
    )
    # Keep the IR version old enough for every onnxruntime this project allows.
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
