"""onnxruntime session settings shared by every local model."""

import os
from pathlib import Path

import onnxruntime as ort

# More threads than cores only adds contention; past ~8 a model this small stops scaling.
_MAX_THREADS = 8


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def intra_op_threads() -> int:
    return min(available_cpus(), _MAX_THREADS)


def create_session(model_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()
    # One graph runs at a time per call; parallel branches would only fight for the same cores.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
