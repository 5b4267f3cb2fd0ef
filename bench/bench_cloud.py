"""Push and resume of N documents (custom 384-d vectors) with the published SDK ``moss``,
through the mock cloud (``sessionspec serve`` in a subprocess) and, for comparison, through a
minimal server that only moves bytes (reads the push body and discards it; serves
pre-encoded download files).

    python bench/bench_cloud.py [--sizes 10000 100000] [--dim 384] [--rounds 5] [--no-baseline]

Prints a table and writes ``bench/results/cloud.json``. Each round runs both servers in turn,
each run with the SDK in a fresh process (in one process, a second 100k run's upload was read
in 6.6-7.9 s against 3.4-4.6 s for the first); the ratios are the median of the rounds' own
ratios, as the SDK's own share of a push drifts with the machine (7-14 s at 100k across runs
on the 2-core machine of the recorded results).

Times are wall-clock seconds of ``SessionIndex.push_index()`` and of
``MossClient.session(name)`` in a new client (the resume: token, GET index, GET url, both
downloads, load). Server memory is the peak RSS
(VmHWM) of the server process during each phase; the push's ``push_helper_memory`` adds its
parser helper process's peak (mostly the body's pages, mapped from the server) and its own
memory after the push.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._cloud import CONTROL_KEY, KEY, PROJECT, settle  # noqa: E402
from mock_cloud.server import ServerProcess  # noqa: E402
from mock_cloud.settings import Settings  # noqa: E402
from protocol.artifact import IndexArtifact, encode_artifact  # noqa: E402
from protocol.documents import StoredDocument, encode_documents  # noqa: E402

INDEX = "bench-index"
# Figures recorded earlier on this machine for the published SDK against a minimal server.
REFERENCE_S = {"push": {10_000: 0.8, 100_000: 10.0}, "resume": {10_000: 0.84, 100_000: 7.9}}


@dataclass
class Run:
    server: str
    docs: int
    dim: int
    push_s: float
    resume_s: float
    push_bytes: int
    resume_bytes: int
    server_peak_mb_push: float | None
    server_peak_mb_resume: float | None
    resumed_doc_count: int
    detail: dict[str, Any] = field(default_factory=dict)
    round: int = 1
    resume_settled_s: float | None = None  # resumed again once the server had settled


# --- data -----------------------------------------------------------------------------------
def make_vectors(n: int, dim: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def text_of(i: int) -> str:
    return f"document {i} about topic {i % 97} and subject {i % 13}"


def metadata_of(i: int) -> dict[str, str]:
    return {"group": str(i % 10)}


# --- server memory --------------------------------------------------------------------------
def server_pids(pid: int) -> list[int]:
    """The server and its child processes (the mock cloud's push parser helper)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def reset_peak(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (Linux >= 4.0); without it the peak is overall.
    for each in server_pids(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{each}/clear_refs").write_text("5")


def _status_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_mb(pid: int) -> float | None:
    """The server process's peak resident memory."""
    return _status_mb(pid, "VmHWM")


def helper_mb(pid: int) -> dict[str, float]:
    """The server's child processes (its push parser's helper): their peak resident memory,
    which counts the pages of the body they map from the server, and their own memory."""
    helpers = server_pids(pid)[1:]
    peaks = [_status_mb(each, "VmHWM") or 0.0 for each in helpers]
    own = [_status_mb(each, "RssAnon") or 0.0 for each in helpers]
    return {"helper_peak_mb": sum(peaks), "helper_own_mb": sum(own)} if helpers else {}


# --- the minimal server ---------------------------------------------------------------------
def serve_baseline(files_dir: Path) -> None:
    """A server that does no work: the SDK's own cost of a push and a resume."""
    state = {"pushed": False}
    info = json.loads((files_dir / "info.json").read_text())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drain(self) -> int:
            left = int(self.headers.get("Content-Length") or 0)
            total = left
            while left:
                left -= len(self.rfile.read(min(left, 1 << 20)))
            return total

        def do_POST(self) -> None:
            self._drain()
            if self.path.endswith("/auth/token"):
                self._reply(200, b'{"token":"t","expiresIn":3600}')
            elif self.path.endswith("/index/push"):
                state["pushed"] = True
                self._reply(200, b'{"jobId":"j","status":"completed"}')
            else:
                self._reply(200, b"{}")

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.startswith("/files/"):
                self._reply(200, (files_dir / self.path.removeprefix("/files/")).read_bytes(),
                            "application/octet-stream")
            elif self.path.endswith("/url"):
                self._reply(200, json.dumps({"indexUrl": f"{base}/files/index.moss",
                                             "dataUrl": f"{base}/files/docs.json"}).encode())
            elif state["pushed"]:
                self._reply(200, json.dumps(info).encode())
            else:
                self._reply(404, b'{"error":"not found"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"export MOSS_INDEX_URL=http://127.0.0.1:{server.server_address[1]}/index", flush=True)
    server.serve_forever()


class Baseline:
    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.process: subprocess.Popen[str] | None = None
        self.index_url = ""

    def __enter__(self) -> "Baseline":
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--baseline-server", str(self.files_dir)],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.index_url = line.strip().removeprefix("export MOSS_INDEX_URL=")
        return self

    @property
    def auth_url(self) -> str:
        return self.index_url.removesuffix("/index") + "/auth/token"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


def write_baseline_files(files_dir: Path, vectors: np.ndarray) -> None:
    n, dim = vectors.shape
    ids = [f"doc-{i}" for i in range(n)]
    docs = [StoredDocument(ids[i], text_of(i), metadata_of(i), None) for i in range(n)]
    artifact = IndexArtifact(INDEX, "custom", dim, vectors, ids)
    (files_dir / "index.moss").write_bytes(encode_artifact(artifact))
    (files_dir / "docs.json").write_bytes(encode_documents(docs))
    (files_dir / "info.json").write_text(json.dumps({
        "name": INDEX, "document_count": n, "model_id": "custom", "version": "1",
        "updated_at": "2025-01-01T00:00:00Z", "created_at": "2025-01-01T00:00:00Z"}))


# --- one run ----------------------------------------------------------------------------------
async def push_and_resume(moss: Any, vectors: np.ndarray, pid: int,
                          settle: Callable[[], None] | None = None) -> dict[str, Any]:
    """Push, resume at once, then resume again once the server's work is done (``settle``):
    a resume right after a push waits for the download files being built."""
    n = vectors.shape[0]
    docs = [moss.DocumentInfo(id=f"doc-{i}", text=text_of(i), metadata=metadata_of(i),
                              embedding=vectors[i].tolist()) for i in range(n)]
    client = moss.MossClient(PROJECT, KEY)
    session = await client.session(INDEX, model_id="custom")
    started = time.perf_counter()
    await session.add_docs(docs)
    add_s = time.perf_counter() - started
    del docs
    reset_peak(pid)
    started = time.perf_counter()
    result = await session.push_index()
    push_s = time.perf_counter() - started
    peak_push = peak_mb(pid)
    helper_push = helper_mb(pid)
    probe = vectors[n // 2].tolist()
    before = await session.query("", moss.QueryOptions(embedding=probe, top_k=3))
    await session.close()
    await client.close()

    reset_peak(pid)
    resumed_client = moss.MossClient(PROJECT, KEY)
    started = time.perf_counter()
    resumed = await resumed_client.session(INDEX)
    resume_s = time.perf_counter() - started
    peak_resume = peak_mb(pid)
    after = await resumed.query("", moss.QueryOptions(embedding=probe, top_k=3))
    count = resumed.doc_count
    await resumed.close()
    await resumed_client.close()
    same = [(d.id, round(d.score, 5)) for d in before.docs] == [
        (d.id, round(d.score, 5)) for d in after.docs]

    if settle is not None:
        settle()
    settled_client = moss.MossClient(PROJECT, KEY)
    started = time.perf_counter()
    settled = await settled_client.session(INDEX)
    resume_settled_s = time.perf_counter() - started
    await settled.close()
    await settled_client.close()
    return {"add_docs_s": add_s, "push_s": push_s, "resume_s": resume_s,
            "resume_settled_s": resume_settled_s, "peak_push": peak_push,
            "helper_push": helper_push,
            "peak_resume": peak_resume, "doc_count": count, "push_job": result.job_id,
            "same_top3_after_resume": same}


def use_server(auth_url: str, index_url: str, home: Path) -> None:
    os.environ["MOSS_AUTH_URL"] = auth_url
    os.environ["MOSS_INDEX_URL"] = index_url
    os.environ["HOME"] = str(home)


def sessionspec_command() -> list[str]:
    # The console script of this interpreter's install, not whichever one PATH finds first.
    script = Path(sys.executable).parent / "sessionspec"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m",
                                                           "mock_cloud.serve"]


def run_mock_cloud(moss: Any, vectors: np.ndarray, work: Path) -> Run:
    settings = Settings(work / "data", {PROJECT: KEY}, control_key=CONTROL_KEY)
    with ServerProcess(settings, program=sessionspec_command(),
                       extra_args=["--verbose"]) as server:
        use_server(server.auth_url, server.index_url, work / "home-mock")
        out = asyncio.run(push_and_resume(moss, vectors, server.pid, lambda: settle(server)))
        log = httpx.get(f"{server.base_url}/_mock/requests",
                        headers={"X-Control-Key": CONTROL_KEY}, timeout=60).json()
    push_bytes = sum(e["body_bytes"] for e in log if e["route"] == "/index/push")
    # The first resume's two downloads (the settled resume downloads them again).
    blobs = [e for e in log if e["route"].startswith("/_blobs/")][:2]
    detail = {
        "add_docs_s": out["add_docs_s"],
        "same_top3_after_resume": out["same_top3_after_resume"],
        "push_helper_memory": out["helper_push"],
        # The first of each (the push and the resume right after it), not the settled resume.
        "server_ms": {route: ms for route, ms in reversed(
            [(f"{e['method']} {e['route']}", e["duration_ms"]) for e in log
             if e["route"] != "/index/telemetry"])},
    }
    server_log = (settings.data_dir / "server.log").read_text()
    timing = re.search(r"read and parse ([\d.]+)s, decode ([\d.]+)s, store ([\d.]+)s",
                       server_log)
    if timing:
        detail["push_phases_s"] = dict(zip(("read_and_parse", "decode", "store"),
                                           map(float, timing.groups()), strict=True))
    parsed_by = re.search(r"rows parsed by (.+?), \d+ bytes", server_log)
    if parsed_by:
        detail["rows_parsed_by"] = parsed_by.group(1)
    kept = re.search(r"(\d+) bytes of their text kept", server_log)
    if kept:
        detail["embedding_text_kept_bytes"] = int(kept.group(1))
    built = re.search(r"built downloads of .* in ([\d.]+)s", server_log)
    if built:
        detail["download_build_s"] = float(built.group(1))
    detail["load_average"] = os.getloadavg()
    return Run("mock_cloud", vectors.shape[0], vectors.shape[1], out["push_s"],
               out["resume_s"], push_bytes, sum(e["response_bytes"] for e in blobs),
               out["peak_push"], out["peak_resume"], out["doc_count"], detail,
               resume_settled_s=out["resume_settled_s"])


def run_baseline(moss: Any, vectors: np.ndarray, work: Path) -> Run:
    files = work / "baseline"
    files.mkdir()
    write_baseline_files(files, vectors)
    with Baseline(files) as server:
        use_server(server.auth_url, server.index_url, work / "home-baseline")
        out = asyncio.run(push_and_resume(moss, vectors, server.pid))
    resume_bytes = sum((files / name).stat().st_size for name in ("index.moss", "docs.json"))
    return Run("minimal", vectors.shape[0], vectors.shape[1], out["push_s"], out["resume_s"],
               0, resume_bytes, out["peak_push"], out["peak_resume"], out["doc_count"],
               {"add_docs_s": out["add_docs_s"]}, resume_settled_s=out["resume_settled_s"])


# --- report -----------------------------------------------------------------------------------
def table(runs: list[Run]) -> str:
    head = (f"{'docs':>7} {'round':>5} {'server':<10} {'push s':>7} {'resume s':>8} "
            f"{'settled':>8} {'push MB':>8} {'resume MB':>9} {'peak MB push':>12} "
            f"{'peak MB resume':>14}")
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r.docs:>7} {r.round:>5} {r.server:<10} {r.push_s:>7.2f} {r.resume_s:>8.2f} "
            f"{r.resume_settled_s or 0:>8.2f} "
            f"{r.push_bytes / 1e6:>8.1f} {r.resume_bytes / 1e6:>9.1f} "
            f"{r.server_peak_mb_push or 0:>12.0f} {r.server_peak_mb_resume or 0:>14.0f}")
    return "\n".join(lines)


def ratios(runs: list[Run]) -> list[dict[str, Any]]:
    """Per size: each round's mock-cloud time over its minimal-server time, and their median."""
    out = []
    for n in sorted({r.docs for r in runs}):
        mock = {r.round: r for r in runs if r.server == "mock_cloud" and r.docs == n}
        base = {r.round: r for r in runs if r.server == "minimal" and r.docs == n}
        row: dict[str, Any] = {"docs": n}
        paired = sorted(mock.keys() & base.keys())
        for phase in ("push", "resume", "resume_settled"):
            if paired:
                each = [getattr(mock[i], f"{phase}_s") / getattr(base[i], f"{phase}_s")
                        for i in paired]
                row[f"{phase}_vs_minimal"] = round(float(np.median(each)), 2)
                row[f"{phase}_vs_minimal_by_round"] = [round(x, 2) for x in each]
            if mock and n in REFERENCE_S.get(phase, {}):
                median = float(np.median([getattr(r, f"{phase}_s") for r in mock.values()]))
                row[f"{phase}_vs_reference"] = round(median / REFERENCE_S[phase][n], 2)
        out.append(row)
    return out


def run_in_fresh_process(kind: str, n: int, dim: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as tmp:
        out = Path(tmp) / "run.json"
        subprocess.run([sys.executable, __file__, "--one-run", kind, "--sizes", str(n),
                        "--dim", str(dim), "--out", str(out)], check=True)
        return Run(**json.loads(out.read_text()))


def one_run(kind: str, n: int, dim: int, out: Path) -> None:
    import moss

    vectors = make_vectors(n, dim)
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as tmp:
        runner = run_baseline if kind == "minimal" else run_mock_cloud
        run = runner(moss, vectors, Path(tmp))
    assert run.resumed_doc_count == n, f"resumed {run.resumed_doc_count} of {n}"
    out.write_text(json.dumps(asdict(run)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    # Five: the published SDK's own push swings by a third from one run to the next, and the
    # median of three rounds' ratios moved with a single slow round.
    parser.add_argument("--rounds", type=int, default=5,
                        help="runs of each server at each size, taking turns")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the minimal server runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cloud.json")
    parser.add_argument("--baseline-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--one-run", choices=["minimal", "mock_cloud"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        serve_baseline(args.baseline_server)
        return 0
    if args.one_run:
        one_run(args.one_run, args.sizes[0], args.dim, args.out)
        return 0
    import moss

    load_at_start = os.getloadavg()
    runs: list[Run] = []
    for n in args.sizes:
        for round_ in range(1, args.rounds + 1):
            for kind in ([] if args.no_baseline else ["minimal"]) + ["mock_cloud"]:
                run = run_in_fresh_process(kind, n, args.dim)
                run.round = round_
                runs.append(run)
                print(f"{n} docs, round {round_}, {kind}: push {run.push_s:.2f}s, "
                      f"resume {run.resume_s:.2f}s", file=sys.stderr, flush=True)
    print(table(runs))
    result = {
        "benchmark": "cloud push/resume through the published SDK",
        "sdk": f"moss {getattr(moss, '__version__', '1.21.0')}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # other work on the machine inflates every number: read these with it
                    "load_average_at_start": load_at_start},
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reference_minimal_server_s": REFERENCE_S,
        "runs": [asdict(r) for r in runs],
        "ratios": ratios(runs),
    }
    print(json.dumps(result["ratios"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
