"""Shared pieces for writing transformer encoders as ONNX graphs with the ``onnx`` helper API
(no torch): a small graph builder, Linear / LayerNorm / GELU blocks and the final model wrapper.

Used by :mod:`.mpnet_onnx` and :mod:`.bert_onnx`. Only preparing a model imports this module;
loading a prepared model never needs the ``onnx`` package.
"""

import math
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# onnxruntime's contrib operators (Attention, BiasGelu, ...); the graphs only ever run there.
CONTRIB_DOMAIN = "com.microsoft"
# Keep the IR version old enough for every onnxruntime this project allows.
IR_VERSION = 8


class GraphBuilder:
    """Collects nodes and initializers; every node gets one fresh, numbered output name."""

    def __init__(self, weights: Mapping[str, np.ndarray], layer_norm_eps: float) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.layer_norm_eps = layer_norm_eps
        self._weights = weights
        self._count = 0

    def w(self, name: str) -> np.ndarray:
        """A checkpoint tensor as float32."""
        return np.asarray(self._weights[name], dtype=np.float32)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], *, domain: str = "", **attrs) -> str:
        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        # An empty domain is left unset rather than written as "", which keeps the mpnet graph
        # byte-identical to the one its converter version has always produced.
        node = helper.make_node(op_type, inputs, [output], domain=domain or None, **attrs)
        self.nodes.append(node)
        return output

    def matmul(self, x: str, prefix: str, scale: float = 1.0) -> str:
        """``x @ W.T`` for the torch Linear ``prefix`` (stored [out, in]), bias not added."""
        weight = self.w(f"{prefix}.weight").T * np.float32(scale)
        return self.op("MatMul", [x, self.const(f"{prefix}.weight_t", weight)])

    def linear(self, x: str, prefix: str, scale: float = 1.0) -> str:
        """torch Linear; ``scale`` multiplies weight and bias (folds a constant factor in)."""
        product = self.matmul(x, prefix, scale)
        bias = self.const(f"{prefix}.bias", self.w(f"{prefix}.bias") * np.float32(scale))
        return self.op("Add", [product, bias])

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "LayerNormalization",
            [
                x,
                self.const(f"{prefix}.weight", self.w(f"{prefix}.weight")),
                self.const(f"{prefix}.bias", self.w(f"{prefix}.bias")),
            ],
            axis=-1,
            epsilon=self.layer_norm_eps,
        )

    def erf_gelu(self, x: str, one: str, half: str, sqrt_half: str) -> str:
        """Exact (erf) GELU, Hugging Face's "gelu", from standard operators."""
        erf = self.op("Erf", [self.op("Mul", [x, sqrt_half])])
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [erf, one])])

    def gelu_constants(self) -> tuple[str, str]:
        """The ``half`` and ``sqrt_half`` scalars that :meth:`erf_gelu` takes."""
        sqrt_half = self.const("sqrt_half", np.array(1 / math.sqrt(2), dtype=np.float32))
        half = self.const("half", np.array(0.5, dtype=np.float32))
        return half, sqrt_half


def finish_model(
    g: GraphBuilder,
    hidden_state: str,
    *,
    graph_name: str,
    input_names: list[str],
    hidden_size: int,
    contrib_ops: bool = False,
) -> onnx.ModelProto:
    """Wrap the nodes into a checked model: int64 ``[batch, sequence]`` inputs, one float32
    output ``last_hidden_state`` of shape ``[batch, sequence, hidden_size]``."""
    g.nodes.append(helper.make_node("Identity", [hidden_state], ["last_hidden_state"]))
    graph = helper.make_graph(
        g.nodes,
        graph_name,
        inputs=[
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in input_names
        ],
        outputs=[
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden_size]
            )
        ],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if contrib_ops:
        opsets.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="sessionspec.reference.embeddings"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
