"""Query latency of a session: the reference beside the published SDK on the same vectors.

p50 / p99 over repeated queries at each size, unfiltered and with one ``$eq`` filter that
keeps a tenth of the documents, plus numpy brute force as the floor. The sides and the two
kinds of query take turns, 20 queries at a time, and the reference's figures include the
median of its per-query time ratio to the published SDK on the same queries, the share of them
it answered faster, and (filtered) the median ratio to the same query unfiltered. Writes
``bench/results/query.json``.

    python bench/bench_query.py [--sizes 1000 10000 100000] [--queries 200]
"""

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench._cloud import KEY, PROJECT, bench_cloud, machine
from reference import Client, DocumentInfo, QueryOptions

DIM = 384
FILTER = {"field": "bucket", "condition": {"$eq": "3"}}


def corpus(n: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(n)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, [f"doc {i} bucket {i % 10}" for i in range(n)]


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


BLOCK = 20


def _timed(fn: Callable[..., object], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _brute_force(vectors: np.ndarray, q: np.ndarray) -> object:
    return np.argpartition(-(vectors @ q), 5)[:5]


def bench_size(vectors: np.ndarray, texts: list[str], queries: np.ndarray) -> dict:
    """Query latencies of the reference, the published SDK (if installed) and numpy brute
    force on the same vectors and the same queries."""
    metadata = [{"bucket": str(i % 10)} for i in range(len(texts))]
    session = Client(PROJECT, KEY).session(f"ref-{len(texts)}", model_id="custom")
    session.add_docs([DocumentInfo(f"d{i}", t, metadata[i], vectors[i])
                      for i, t in enumerate(texts)])
    try:
        import moss
    except ImportError:
        moss = None

    async def run() -> dict:
        other = None
        if moss is not None:
            other = await moss.MossClient(PROJECT, KEY).session(f"moss-{len(texts)}",
                                                                model_id="custom")
            await other.add_docs([moss.DocumentInfo(f"d{i}", t, metadata[i], vectors[i].tolist())
                                  for i, t in enumerate(texts)])
        samples: dict[str, dict[str, list[float]]] = {"reference": {}, "moss": {}, "numpy": {}}

        def ref_query(q: np.ndarray, flt: dict | None) -> None:
            session.query("doc", QueryOptions(embedding=q, filter=flt))

        # Blocks of queries in turn, and within a block each side and each kind of query in
        # turn: each side runs warm (its matrix in cache, as in an application querying one
        # index), and drift in the machine's speed over the run touches every side and both
        # kinds alike, so that filtered and unfiltered times pair up too. The first block is
        # a warm-up.
        kinds = (("query", None), ("query_filtered", FILTER))
        for b, start in enumerate(range(-BLOCK, len(queries), BLOCK)):
            block = queries[:BLOCK] if start < 0 else queries[start : start + BLOCK]
            # Each kind goes first in every other block: what ran just before (the other
            # side's sweep over its own matrix, say) is then the same for both.
            for label, flt in kinds if b % 2 else kinds[::-1]:
                ref = [_timed(ref_query, q, flt) for q in block]
                sdk = []
                if other is not None:
                    for q in block:
                        as_list = q.tolist()
                        t = time.perf_counter()
                        await other.query("doc", moss.QueryOptions(embedding=as_list, top_k=5,
                                                                   filter=flt))
                        sdk.append(time.perf_counter() - t)
                brute = [_timed(_brute_force, vectors, q) for q in block] if flt is None else []
                if b:
                    samples["reference"].setdefault(label, []).extend(ref)
                    samples["moss"].setdefault(label, []).extend(sdk)
                    samples["numpy"].setdefault(label, []).extend(brute)
        out: dict = {k: {label: percentiles(v) for label, v in by.items() if v} or None
                     for k, by in samples.items()}
        for side, by in samples.items():
            if by.get("query_filtered") and by.get("query"):
                ratio = np.array(by["query_filtered"]) / np.array(by["query"])
                out[side]["query_filtered"]["median_ratio_to_unfiltered"] = float(np.median(ratio))
        if other is not None:
            for label, ref in samples["reference"].items():
                ratio = np.array(ref) / np.array(samples["moss"][label])
                out["reference"][label]["median_ratio_to_moss"] = float(np.median(ratio))
                out["reference"][label]["faster_than_moss_share"] = float((ratio < 1).mean())
        return out

    return asyncio.run(run())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "query.json")
    args = p.parse_args()
    rows = []
    load_at_start = os.getloadavg()
    with bench_cloud():
        for n in args.sizes:
            vectors, texts = corpus(n)
            queries = np.random.default_rng(1).standard_normal((args.queries, DIM))
            queries = queries.astype(np.float32)
            rows.append({"docs": n, **bench_size(vectors, texts, queries)})
            print_row(rows[-1])
    # Other work on the machine inflates every figure: read them with the load beside them.
    load = {"load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()}
    args.out.write_text(json.dumps({"machine": {**machine(), **load}, "dimension": DIM,
                                    "top_k": 5, "queries": args.queries, "results": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


def print_row(row: dict) -> None:
    def cell(r: dict | None, key: str) -> str:
        if not r or key not in r:
            return "-"
        return f"{r[key]['p50_ms']:.2f} / {r[key]['p99_ms']:.2f}"

    for key in ("query", "query_filtered"):
        ref = row["reference"][key]
        paired = (f"  ratio {ref['median_ratio_to_moss']:.2f}, faster in "
                  f"{ref['faster_than_moss_share']:.0%}" if "median_ratio_to_moss" in ref else "")
        if "median_ratio_to_unfiltered" in ref:
            paired += f"; to unfiltered {ref['median_ratio_to_unfiltered']:.2f}"
        print(f"{row['docs']:>7} {key:<15} reference {cell(row['reference'], key):>15}  "
              f"moss {cell(row['moss'], key):>15}  numpy {cell(row['numpy'], key):>15}{paired}")


if __name__ == "__main__":
    main()
