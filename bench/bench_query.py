"""Query latency of a session: the reference beside the published SDK on the same vectors.

p50 / p99 over repeated queries at each size, unfiltered and with one ``$eq`` filter that
keeps a tenth of the documents, plus numpy brute force as the floor. Writes
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


def timed(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> list[float]:
    for q in queries[:10]:
        fn(q)
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t)
    return out


def bench_reference(vectors: np.ndarray, texts: list[str], queries: np.ndarray) -> dict:
    session = Client(PROJECT, KEY).session(f"ref-{len(texts)}", model_id="custom")
    session.add_docs([
        DocumentInfo(f"d{i}", t, {"bucket": str(i % 10)}, vectors[i]) for i, t in enumerate(texts)
    ])
    plain = timed(lambda q: session.query("doc", QueryOptions(embedding=q)), queries)
    filtered = timed(
        lambda q: session.query("doc", QueryOptions(embedding=q, filter=FILTER)), queries
    )
    return {"query": percentiles(plain), "query_filtered": percentiles(filtered)}


def bench_moss(vectors: np.ndarray, texts: list[str], queries: np.ndarray) -> dict | None:
    try:
        import moss
    except ImportError:
        return None

    async def run() -> dict:
        client = moss.MossClient(PROJECT, KEY)
        session = await client.session(f"moss-{len(texts)}", model_id="custom")
        await session.add_docs([
            moss.DocumentInfo(f"d{i}", t, {"bucket": str(i % 10)}, vectors[i].tolist())
            for i, t in enumerate(texts)
        ])
        out = {}
        for label, flt in (("query", None), ("query_filtered", FILTER)):
            samples = []
            for i, q in enumerate(queries.tolist() + queries[:10].tolist()):
                t = time.perf_counter()
                await session.query("doc", moss.QueryOptions(embedding=q, top_k=5, filter=flt))
                if i >= 10:
                    samples.append(time.perf_counter() - t)
            out[label] = percentiles(samples)
        return out

    return asyncio.run(run())


def bench_numpy(vectors: np.ndarray, queries: np.ndarray) -> dict:
    return {"query": percentiles(timed(lambda q: np.argpartition(-(vectors @ q), 5)[:5], queries))}


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
            rows.append({
                "docs": n,
                "reference": bench_reference(vectors, texts, queries),
                "moss": bench_moss(vectors, texts, queries),
                "numpy": bench_numpy(vectors, queries),
            })
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
        print(f"{row['docs']:>7} {key:<15} reference {cell(row['reference'], key):>15}  "
              f"moss {cell(row['moss'], key):>15}  numpy {cell(row['numpy'], key):>15}")


if __name__ == "__main__":
    main()
