"""An 8-bit copy of a session's vectors that bounds every row's product with a query.

Ranking a large matrix means reading all of it for each query: 150 MB at 100k rows of 384
dimensions, which is as long as the published SDK's whole query takes. This copy is a quarter
of those bytes, and onnxruntime's MatMulInteger multiplies it with an 8-bit copy of the query
exactly, in integers (measured here at 100k rows: 1.3 ms against 7 ms for the float32 scan).
Bounds on what rounding to 8 bits lost give every row an interval that holds its float32
product with the query, whatever order that product is summed in, and
:meth:`Int8Scan.shortlist` keeps the rows whose interval reaches the ``k``-th best floor;
:mod:`reference.search` ranks them with the exact product, so rankings do not change.

Building the copy costs about as much as 130 float32 scans (0.9 s and 40 MB at 100k rows,
most of it onnxruntime packing the codes), so
:class:`Int8Cache` builds it in a background thread once a matrix is queried twice without a
change in between, and queries scan the float32 matrix until it is ready.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from reference.embeddings.runtime import available_cpus

__all__ = ["Int8Cache", "Int8Scan", "kernel_is_exact"]

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_Rows = npt.NDArray[np.intp]
KthFloor = Callable[[_F32, int], "np.floating | None"]

# AVX2's 8-bit product (vpmaddubsw) multiplies the query's raw uint8 values (zero point
# included) by the documents' int8 codes and adds pairs into a saturating int16. Raw values of
# at most 64 + 63 = 127 against codes of at most 127 in size keep a pair within
# 2 * 127 * 127 = 32258 < 32767, so no sum can saturate, on any instruction set.
_DOC_CODE = 127
_QUERY_CODE = 63
_QUERY_ZERO = 64  # the query's codes travel as uint8 with this zero point
_U32 = 2.0**-24  # unit roundoff of float32
# Rows are quantized this many at a time, which bounds the build's scratch memory, and a
# cancelled build stops between chunks.
CHUNK_ROWS = 8192
_MAX_PRODUCT = 1e30  # as in reference.search: beyond this float32 products may overflow


@functools.cache
def kernel_is_exact() -> bool:
    """Whether this machine's MatMulInteger gives exact integer products at the code bounds.

    Checked once per process on the extremes: every pair at its largest product, both signs,
    where a saturating kernel would go wrong first.
    """
    dim = 384
    query = np.full(dim, _QUERY_ZERO + _QUERY_CODE, dtype=np.uint8)
    query[1::2] = _QUERY_ZERO - _QUERY_CODE
    codes = np.empty((dim, 4), dtype=np.int8)
    codes[:, 0], codes[:, 1] = _DOC_CODE, -_DOC_CODE
    codes[:, 2] = np.where(np.arange(dim) % 2, -_DOC_CODE, _DOC_CODE)
    codes[:, 3] = np.where(np.arange(dim) % 2, _DOC_CODE, -_DOC_CODE)
    try:
        got = _session(codes).run(None, {"q": query[None, :]})[0][0]
    except Exception:  # any failure of the kernel means: do not use it
        return False
    want = (query.astype(np.int64) - _QUERY_ZERO) @ codes.astype(np.int64)
    return bool(np.array_equal(got.astype(np.int64), want))


def _session(codes: npt.NDArray[np.int8]) -> ort.InferenceSession:
    """A session computing ``(q - zero) @ codes`` for a uint8 ``q`` of shape ``(1, dim)``."""
    dim, cols = codes.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["q", "codes", "zero"], ["y"])],
        "int8_scan",
        [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, dim])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, cols])],
        initializer=[
            helper.make_tensor("zero", TensorProto.UINT8, [], [_QUERY_ZERO]),
            numpy_helper.from_array(codes, "codes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    model.ir_version = 7
    options = ort.SessionOptions()
    # onnxruntime's own pool, whose calling thread takes part: measured on two idle cores,
    # 1.2 ms at 100k rows against 1.7 ms for two sessions of half the rows on two Python
    # threads, and 2.4 ms on one thread.
    options.intra_op_num_threads = min(available_cpus(), 4)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    # The Python wrapper keeps the model bytes (the codes once more) only to rebuild the
    # session on a provider failure, which the CPU provider does not have.
    if hasattr(session, "_model_bytes"):
        session._model_bytes = None
    return session


def _quantize(rows: _F32) -> tuple[npt.NDArray[np.int8], _F32, _F64]:
    """Codes, scale and residual bound of each row: ``|row - scale * codes| <= bound``.

    Any codes and scales would do, since the bound is of what they actually miss: they are
    the nearest codes at a scale that maps the largest component to 127.
    """
    peak = np.abs(rows).max(axis=1)
    scale = peak / np.float32(_DOC_CODE)
    scale[~(scale > 0)] = 1.0  # zero rows, and rows whose peak underflows
    # Divided, not multiplied by 1 / scale: that overflows for a tiny scale, and 0 * inf is NaN.
    codes = rows / scale[:, None]
    np.rint(codes, out=codes)
    np.clip(codes, -_DOC_CODE, _DOC_CODE, out=codes)
    residual = rows - codes * scale[:, None]
    computed = np.sqrt(np.einsum("ij,ij->i", residual, residual, dtype=np.float64))
    # The residual was computed in float32: each component is within u (|scale code| + |r|)
    # of the true one, so the true norm is within 2u (|row| + 2 |r|) of the computed one
    # (|scale code| <= |row| + |r|). The last terms cover underflow and the square root.
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
    dim = rows.shape[1]
    bound = computed * (1.0 + 8.0 * _U32) + 2.0 * _U32 * norms + dim * 2.0**-140
    return codes.astype(np.int8), scale, bound


@dataclass(frozen=True)
class Int8Scan:
    """The 8-bit copy of a matrix's rows, and the bounds that make it exact enough."""

    rows: int
    dimension: int
    scales: _F32  # row i is about scales[i] * its codes
    max_residual: float  # bound on any row's rounding error, as a vector norm
    max_norm: float  # bound on any row's norm
    max_coded: float  # bound on any row's |scale * codes|
    session: ort.InferenceSession

    @classmethod
    def build(
        cls, vectors: _F32, norms: _F32, *, cancelled: Callable[[], bool] = lambda: False
    ) -> Int8Scan | None:
        """The copy of ``vectors`` (whose L2 norms, as float32, are ``norms``), or ``None``
        if ``cancelled()`` turned true in the meantime (checked between chunks of rows)."""
        n, dim = vectors.shape
        codes = np.empty((dim, n), dtype=np.int8)  # the layout MatMulInteger multiplies
        scales = np.empty(n, dtype=np.float32)
        max_residual = max_coded = 0.0
        for start in range(0, n, CHUNK_ROWS):
            if cancelled():
                return None
            part = slice(start, start + CHUNK_ROWS)
            chunk, scales[part], residual = _quantize(vectors[part])
            codes[:, part] = chunk.T
            coded = scales[part] * np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64))
            # np.maximum, not max(): a NaN must not vanish from a bound.
            max_residual = float(np.maximum(max_residual, residual.max()))
            max_coded = float(np.maximum(max_coded, coded.max()))
        if cancelled() or not np.isfinite(max_residual + max_coded):
            return None
        # Stored norms are float32 roundings of the float64 ones: 2u covers them.
        max_norm = float(norms.max(initial=0.0)) * (1.0 + 2.0 * _U32)
        session = _session(codes)
        return cls(n, dim, scales, max_residual, max_norm, max_coded * (1.0 + 1e-9), session)

    def shortlist(
        self, q: _F32, k: int, kth_floor: KthFloor, rows: _Rows | None = None
    ) -> _Rows | None:
        """Positions in ``rows`` (ascending row numbers; all rows if ``None``) that hold every
        one of the ``k`` largest float32 products with ``q`` among them, whatever order those
        are summed in. ``None`` when float32 products could overflow, or when ``kth_floor``
        (a value at most the ``k``-th largest of an array, or ``None``) gives up.
        """
        dim = self.dimension
        q64 = q.astype(np.float64)
        q_norm = float(np.sqrt(q64 @ q64))
        if dim * _U32 >= 0.5 or not q_norm * self.max_norm < _MAX_PRODUCT:
            return None  # gamma below needs d u < 1; and float32 products could overflow
        # A float32 step, so that the products below round as the margin allows; 1 when there
        # is none (a zero query, or one so small that its step underflows: all of it is lost).
        step = float(np.float32(float(np.abs(q64).max()) / _QUERY_CODE))
        if not step > 0:
            step = 1.0
        codes = np.clip(np.rint(q64 / step), -_QUERY_CODE, _QUERY_CODE)
        lost = q64 - step * codes
        y = self.session.run(None, {"q": (codes + _QUERY_ZERO).astype(np.uint8)[None, :]})[0][0]
        scales = self.scales
        if rows is not None:  # only the survivors' products are needed from here on
            y, scales = y[rows], scales[rows]
        centre = y.astype(np.float32)
        centre *= scales
        centre *= np.float32(step)
        # Exactly, q . d = step scale (codes . d_codes) + step (codes . d_residual) + lost . d,
        # the last two at most step |codes| |d_residual| + |lost| |d| (Cauchy-Schwarz).
        # float32 sums of q . d in any order are within gamma_dim |q| |d| of it (Higham,
        # 3.1). centre rounds three times (int to float32 and two products), each within u
        # of step |codes| |scale d_codes|; float64 rounding here is far below the slack.
        gamma = dim * _U32 / (1.0 - dim * _U32)
        code_norm = float(np.sqrt(codes @ codes))
        margin = (
            step * code_norm * (self.max_residual + 4.0 * _U32 * self.max_coded)
            + float(np.sqrt(lost @ lost)) * self.max_norm
            + gamma * 1.01 * q_norm * self.max_norm
        ) * (1.0 + 1e-6) + dim * 2.0**-120  # the last: products that underflow in float32
        found = kth_floor(centre, k)
        if found is None:
            return None
        # The k rows with the largest centre have products >= centre - margin >= floor -
        # margin, so the k-th largest product does, and a row that reaches it has a centre
        # >= floor - 2 margin. Rounded down into float32 so that no row at the edge drops.
        cut = np.nextafter(np.float32(float(found) - 2.0 * margin), np.float32(-np.inf))
        return np.flatnonzero(centre >= cut)


class Int8Cache:
    """The :class:`Int8Scan` of one matrix, built in the background while it is queried.

    :meth:`changed` must be called on every change of the matrix; :meth:`get` returns the
    copy only if it was built from the matrix as it is now. A build starts once the matrix
    has been queried ``threshold`` times in a row without a change (2 at first). A build that
    a change made useless before any query used it doubles the threshold, so a matrix that
    changes between every few queries stops paying for builds; one that is used resets it.
    """

    MIN_ROWS = 8192  # below this the float32 scan takes well under a millisecond
    FIRST_THRESHOLD = 2

    def __init__(self, *, background: bool = True) -> None:
        self._background = background
        self._lock = threading.Lock()
        self._version = 0
        self._streak = 0
        self.threshold = self.FIRST_THRESHOLD
        self._built: Int8Scan | None = None
        self._used = False
        self._building = False
        self.builds_started = 0
        self._pid = os.getpid()

    def changed(self) -> None:
        """Forget the copy: the matrix is about to change (or has)."""
        with self._lock:
            self._version += 1
            self._streak = 0
            if self._built is not None:
                self.threshold = self.FIRST_THRESHOLD if self._used else 2 * self.threshold
                self._built = None

    def get(self, vectors: _F32, norms: _F32) -> Int8Scan | None:
        """The copy of ``vectors`` if it is built; may start building it."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: onnxruntime's threads and a running build stayed behind.
                self._pid, self._built, self._building = os.getpid(), None, False
                self._streak = 0
            self._streak += 1
            if self._built is not None:
                self._used = True
                return self._built
            start = (
                not self._building
                and self._streak >= self.threshold
                and len(vectors) >= self.MIN_ROWS
                and kernel_is_exact()
            )
            if not start:
                return None
            self._building = True
            self.builds_started += 1
            version = self._version
        # The arrays are views: a later resize of the matrix replaces its arrays and leaves
        # these intact, and a write into them comes with changed(), which cancels the build.
        if self._background:
            threading.Thread(
                target=self._build,
                args=(version, vectors, norms),
                name="sessionspec-int8-scan",
                daemon=True,
            ).start()
            return None
        self._build(version, vectors, norms)
        with self._lock:
            self._used = self._built is not None
            return self._built

    def _build(self, version: int, vectors: _F32, norms: _F32) -> None:
        scan = None
        try:
            scan = Int8Scan.build(vectors, norms, cancelled=lambda: self._version != version)
        finally:
            with self._lock:
                self._building = False
                if scan is not None and self._version == version:
                    self._built, self._used = scan, False
                else:
                    self.threshold *= 2  # outrun by a change: wait for a longer streak
