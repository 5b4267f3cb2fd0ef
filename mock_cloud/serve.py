"""``sessionspec serve``: the mock cloud as a long-running HTTP server.

Also runnable as ``python -m mock_cloud.serve`` (same options), which is how
:class:`mock_cloud.server.ServerProcess` starts it.
"""

import argparse
import gc
import logging
import signal
import socket
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mock_cloud.app import create_app
from mock_cloud.settings import GIB, Settings
from protocol.buffers import keep_freed_memory
from protocol.names import validate_index_name


def project_argument(value: str) -> tuple[str, str]:
    """``ID:KEY`` -> ``(ID, KEY)``; the key may itself contain ':'."""
    project_id, sep, key = value.partition(":")
    if not sep or not project_id or not key:
        raise argparse.ArgumentTypeError(
            f"expected ID:KEY with both parts non-empty, got {value!r}")
    try:
        validate_index_name(project_id, field="project id")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return project_id, key


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value!r}")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765,
                        help="port to bind, 0 for any free one (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="where the SQLite store, download cache and secret live; "
                             "kept across restarts")
    parser.add_argument("--project", action="append", type=project_argument, default=[],
                        metavar="ID:KEY", help="a project and its key (repeatable); added to "
                        "or updated in the projects already stored in the data dir")
    parser.add_argument("--control-key", default=None,
                        help="enable the /_mock control API, guarded by this X-Control-Key")
    parser.add_argument("--max-body-bytes", type=positive_int, default=GIB,
                        help="largest request body accepted (default: 1 GiB)")
    parser.add_argument("--token-ttl", type=positive_float, default=3600.0,
                        help="seconds a bearer token lives (default: %(default)s)")
    parser.add_argument("--url-ttl", type=positive_float, default=900.0,
                        help="seconds a presigned URL lives (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no log line per request")
    parser.add_argument("--verbose", action="store_true",
                        help="also log timings of pushes and artifact builds")


def prepare_to_serve(app: FastAPI) -> int:
    """Do now what the first requests would otherwise pay for; how many objects are then kept
    out of the cycle collector's full collections.

    FastAPI builds its routes' state and the OpenAPI document (which the request log's route
    table reads) on first use: the first request to a fresh server took 0.2-0.3 s longer.

    What the server builds before it serves (modules, the app, its routes and models: about
    100k objects) lives as long as the server, yet a full collection walks it all, 60-80 ms.
    The documents of one push are enough to set off such a collection, and it then ran inside
    the push, once or twice on every first push to a fresh server. So all of it is exempted
    (``gc.freeze``); objects made later, and the cycles among them, are still collected."""
    app.openapi()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    if not args.quiet:
        logging.getLogger("mock_cloud.requests").setLevel(logging.INFO)
    if args.verbose:
        logging.getLogger("mock_cloud").setLevel(logging.DEBUG)
    settings = Settings(data_dir=args.data_dir, projects=dict(args.project),
                        control_key=args.control_key, token_ttl_s=args.token_ttl,
                        url_ttl_s=args.url_ttl, max_body_bytes=args.max_body_bytes)
    try:
        sock = socket.create_server((args.host, args.port))
    except OSError as exc:
        print(f"sessionspec serve: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    keep_freed_memory()
    app = create_app(settings)
    app.state.cloud.start_helpers()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=10))
    kept = prepare_to_serve(app)
    logging.getLogger("mock_cloud.serve").debug(
        "%d objects built at start kept out of full collections", kept)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler that was installed before it: these make that a normal return, so the store is
    # closed and the exit status is 0. Installed before the ready line, since a signal sent as
    # soon as it appears may arrive before uvicorn has installed its own: it still stops.
    stopped_by: list[int] = []

    def stop(sig: int, _frame: object) -> None:
        stopped_by.append(sig)
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    host, port = sock.getsockname()[:2]
    base = f"http://{host}:{port}"
    print(f"export MOSS_AUTH_URL={base}/auth/token")
    print(f"export MOSS_INDEX_URL={base}/index")
    projects = app.state.cloud.store.projects()
    print(f"# mock cloud on {base}, data in {settings.data_dir}, projects: "
          f"{', '.join(sorted(projects)) or 'none (add one with --project ID:KEY)'}"
          f"{', control API on' if settings.control_key else ''}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        app.state.cloud.close()
    print("# mock cloud stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mock_cloud.serve",
                                     description="run the mock cloud as an HTTP server")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
