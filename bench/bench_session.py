"""Push and resume of a whole session, the reference beside the published SDK.

Each measurement runs in a child process of its own so that its peak memory (ru_maxrss) is
its own: build a session of N documents with custom 384-d vectors and push it; then, in a
fresh process, resume it by name. Resume also counts model calls (the reference's must be 0).
The resumes run in rounds, the SDKs taking turns, and each SDK's resume is reported from its
median round (with every round's time beside it): this machine's speed drifts by a third
within minutes. Writes ``bench/results/session.json``.

    python -m bench.bench_session [--sizes 10000 100000] [--sdks reference moss] [--rounds 3]
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench._cloud import KEY, PROJECT, bench_cloud, machine, settle

DIM = 384


def docs(n: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(n)
    return rng.standard_normal((n, DIM)).astype(np.float32), [f"note {i}" for i in range(n)]


def child(op: str, sdk: str, n: int) -> dict:
    name = f"{sdk}-{n}"
    if sdk == "reference":
        from reference import Client, DocumentInfo
        from reference.embeddings import model_calls

        client = Client(PROJECT, KEY)
        if op == "push":
            vectors, texts = docs(n)
            session = client.session(name, model_id="custom")
            session.add_docs([DocumentInfo(f"d{i}", t, None, vectors[i])
                              for i, t in enumerate(texts)])
            start = time.perf_counter()
            session.push_index()
        else:
            start = time.perf_counter()
            session = client.session(name)
            assert session.doc_count == n, session.doc_count
        seconds = time.perf_counter() - start
        calls = model_calls()
    else:
        import moss

        async def run() -> float:
            client = moss.MossClient(PROJECT, KEY)
            if op == "push":
                vectors, texts = docs(n)
                session = await client.session(name, model_id="custom")
                await session.add_docs([moss.DocumentInfo(f"d{i}", t, None, vectors[i].tolist())
                                        for i, t in enumerate(texts)])
                begin = time.perf_counter()
                await session.push_index()
            else:
                begin = time.perf_counter()
                session = await client.session(name)
                assert session.doc_count == n
            return time.perf_counter() - begin

        seconds = asyncio.run(run())
        calls = None
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "model_calls": calls}


def measure(op: str, sdk: str, n: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_session", "--child", op, sdk, str(n)],
        capture_output=True, text=True, env=os.environ.copy(), timeout=1800,
        cwd=Path(__file__).parent.parent,
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--sdks", nargs="+", default=["reference", "moss"])
    p.add_argument("--rounds", type=int, default=3, help="resumes of each SDK, taking turns")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "session.json")
    p.add_argument("--child", nargs=3, metavar=("OP", "SDK", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        op, sdk, n = args.child
        print(json.dumps(child(op, sdk, int(n))))
        return
    rows = []
    load_at_start = os.getloadavg()
    with bench_cloud() as server:
        for n in args.sizes:
            by_sdk = {sdk: {"docs": n, "sdk": sdk, "push": measure("push", sdk, n)}
                      for sdk in args.sdks}
            settle(server)
            resumes: dict[str, list[dict]] = {sdk: [] for sdk in args.sdks}
            for _ in range(args.rounds):
                for sdk in args.sdks:
                    resumes[sdk].append(measure("resume", sdk, n))
            for sdk, row in by_sdk.items():
                row["resume"] = median_run(resumes[sdk])
                row["resume_seconds_by_round"] = [m.get("seconds") for m in resumes[sdk]]
                rows.append(row)
                print(f"{n:>7} {sdk:<10} push {fmt(row['push'])}   resume {fmt(row['resume'])}"
                      f"  (rounds: {', '.join(fmt_s(m) for m in resumes[sdk])})", flush=True)
    # Other work on the machine inflates every figure: read them with the load beside them.
    load = {"load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()}
    args.out.write_text(json.dumps({"machine": {**machine(), **load}, "dimension": DIM,
                                    "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
                                    "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


def median_run(runs: list[dict]) -> dict:
    """The run of median time (the later of the middle two for an even count); an error if
    any run failed."""
    failed = [m for m in runs if "error" in m]
    if failed:
        return failed[0]
    return sorted(runs, key=lambda m: m["seconds"])[len(runs) // 2]


def fmt_s(m: dict) -> str:
    return "error" if "error" in m else f"{m['seconds']:.2f}"


def fmt(m: dict) -> str:
    if "error" in m:
        return f"error: {m['error']}"
    calls = "" if m["model_calls"] is None else f", {m['model_calls']} model calls"
    return f"{m['seconds']:6.2f} s, peak {m['peak_mb']:7.0f} MB{calls}"


if __name__ == "__main__":
    main()
