"""Wall time and stability of a full ``sessionspec run``.

Runs the whole suite N times against a target, each in a fresh process with its own mock
cloud, and records the wall time of each run and whether every run gave the same verdict for
every clause. Writes ``bench/results/suite-<target>.json``.

    python -m bench.bench_suite [--target reference] [--runs 20]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._cloud import machine


def one_run(target: str) -> tuple[float, int, dict[str, str]]:
    with tempfile.TemporaryDirectory() as report_dir:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "conformance.cli", "run", "--target", target,
             "--report-dir", report_dir],
            capture_output=True, text=True, timeout=900,
        )
        seconds = time.perf_counter() - start
        report = json.loads((Path(report_dir) / "report.json").read_text())
    verdicts = {c["id"]: c["status"] for c in report["clauses"]}
    return seconds, done.returncode, verdicts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", default="reference")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    runs = []
    for i in range(args.runs):
        seconds, code, verdicts = one_run(args.target)
        runs.append({"seconds": round(seconds, 2), "exit": code, "verdicts": verdicts})
        print(f"run {i + 1:>2}: {seconds:6.1f} s, exit {code}, "
              f"{sum(v == 'PASS' for v in verdicts.values())} PASS", flush=True)
    first = runs[0]["verdicts"]
    differing = sorted({c for r in runs for c, v in r["verdicts"].items() if first.get(c) != v})
    times = sorted(r["seconds"] for r in runs)
    summary = {
        "target": args.target, "runs": len(runs), "same_verdicts": not differing,
        "differing_clauses": differing, "min_s": times[0], "median_s": times[len(times) // 2],
        "max_s": times[-1], "exit_codes": sorted({r["exit"] for r in runs}),
    }
    print(json.dumps(summary, indent=2))
    out = Path(__file__).parent / "results" / f"suite-{args.target}.json"
    out.write_text(json.dumps({"machine": machine(), "summary": summary, "runs": runs}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
