"""Restarts keep data; the `serve` command's options, output and clean stop."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mock_cloud.serve import add_arguments
from mock_cloud.server import ServerProcess, running_server
from mock_cloud.settings import Settings
from tests.mock_cloud.conftest import CONTROL_KEY, Cloud, make_docs, settings_for


def test_a_restarted_server_still_has_the_index_tokens_and_urls(tmp_path: Path) -> None:
    with running_server(settings_for(tmp_path)) as first:
        cloud = Cloud(first)
        docs = make_docs(5)
        assert cloud.push("kept", docs).status_code == 200
        info = cloud.call("GET", "/index/kept").json()
        headers = cloud.headers()
        urls = cloud.call("GET", "/index/kept/url").json()
        state = cloud.state()
        cloud.close()
    with running_server(settings_for(tmp_path)) as second:
        base = second.base_url
        old_port = urls["indexUrl"].split("/_blobs")[0]
        reply = httpx.get(f"{base}/index/kept", headers=headers)  # token from before
        assert reply.status_code == 200 and reply.json() == info
        assert httpx.get(urls["indexUrl"].replace(old_port, base)).status_code == 200
        cloud = Cloud(second)
        assert cloud.state() == state
        cloud.push("kept", make_docs(2))
        assert cloud.call("GET", "/index/kept").json()["updated_at"] > info["updated_at"]
        cloud.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_options() -> None:
    args = parse("--data-dir", "d", "--project", "a:k", "--project", "b:k:with:colons",
                 "--control-key", "c", "--max-body-bytes", "1000", "--port", "0")
    assert args.project == [("a", "k"), ("b", "k:with:colons")]
    assert (args.max_body_bytes, args.control_key, args.port, args.host) == (
        1000, "c", 0, "127.0.0.1")


@pytest.mark.parametrize("argv", [
    ["--data-dir", "d", "--project", "nokey"],
    ["--data-dir", "d", "--project", ":key"],
    ["--data-dir", "d", "--project", "id:"],
    ["--data-dir", "d", "--project", "a/b:key"],
    ["--data-dir", "d", "--max-body-bytes", "0"],
    ["--data-dir", "d", "--max-body-bytes", "lots"],
    ["--project", "a:k"],
])
def test_bad_serve_options_are_argparse_errors(argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(*argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_serve_prints_exports_persists_projects_and_stops_on_sigterm(tmp_path: Path) -> None:
    settings = Settings(tmp_path, {"p": "k"}, control_key=CONTROL_KEY)
    server = ServerProcess(settings).start()
    try:
        token = httpx.post(server.auth_url, json={"projectId": "p", "projectKey": "k"})
        assert token.status_code == 200
        headers = {"Authorization": f"Bearer {token.json()['token']}", "X-Project-Id": "p"}
        assert httpx.get(f"{server.index_url}/", headers=headers).json() == []
    finally:
        assert server.stop() == 0
    log = (tmp_path / "server.log").read_text()
    assert "POST /auth/token -> 200" in log and "GET /index/ -> 200" in log
    # started again without --project: the project is still known
    again = ServerProcess(Settings(tmp_path, {}, control_key=CONTROL_KEY)).start()
    try:
        assert httpx.post(again.auth_url, json={"projectId": "p",
                                                "projectKey": "k"}).status_code == 200
    finally:
        again.stop()


def test_a_sigterm_sent_as_soon_as_serve_is_ready_stops_it(tmp_path: Path) -> None:
    # The ready line used to come before the signal handlers: a SIGTERM sent at once was
    # swallowed and the server ran on until killed.
    for attempt in range(3):
        server = ServerProcess(Settings(tmp_path / str(attempt), {"p": "k"})).start()
        assert server.stop(timeout_s=15) == 0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_serve_starts_the_push_parser_helper_and_stops_it_with_itself(tmp_path: Path) -> None:
    def children(pid: int) -> list[int]:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]

    server = ServerProcess(Settings(tmp_path, {"p": "k"})).start()
    try:
        helpers = [child for child in children(server.pid)
                   if "protocol.rowhelper" in Path(f"/proc/{child}/cmdline").read_text()]
        assert len(helpers) == 1
    finally:
        assert server.stop() == 0
    assert not Path(f"/proc/{helpers[0]}").exists()  # exited and reaped, not left behind


def test_keys_that_look_like_options_reach_the_server(tmp_path: Path) -> None:
    # Random control keys (secrets.token_urlsafe) start with "-" one time in 64; passed as a
    # separate argument, argparse took such a key for an option and the server exited.
    settings = Settings(tmp_path, {"p": "-pk"}, control_key="-ck")
    server = ServerProcess(settings).start()
    try:
        token = httpx.post(server.auth_url, json={"projectId": "p", "projectKey": "-pk"})
        assert token.status_code == 200
        state = httpx.get(f"{server.base_url}/_mock/state", headers={"X-Control-Key": "-ck"})
        assert state.status_code == 200 and "p" in state.json()["projects"]
    finally:
        assert server.stop() == 0


def test_the_sessionspec_command_runs_serve(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "serve", "--help"],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and "--data-dir" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "serve", "--data-dir", str(tmp_path),
         "--project", "bad"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "ID:KEY" in out.stderr


_PREPARED_APP = """
import gc, sys, weakref
from pathlib import Path
from mock_cloud.app import create_app
from mock_cloud.serve import prepare_to_serve
from mock_cloud.settings import Settings
app = create_app(Settings(Path(sys.argv[1]), {"p": "k"}))
walked_before = len(gc.get_objects())
frozen = prepare_to_serve(app)
walked_after = len(gc.get_objects())
app_walked = any(obj is app.state.cloud for obj in gc.get_objects())
class Node:
    pass
cycle = Node()
cycle.self = cycle
gone = weakref.ref(cycle)
del cycle
gc.collect()
app.state.cloud.close()
print(walked_before, frozen, walked_after, app.openapi_schema is not None, app_walked,
      gone() is None)
"""


def test_serve_prepares_the_app_and_keeps_it_out_of_full_collections(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _PREPARED_APP, str(tmp_path)], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).parents[2],
                         timeout=120).stdout.split()
    walked_before, frozen, walked_after = map(int, out[:3])
    assert walked_before > 10_000  # the app and everything loaded for it
    assert frozen > walked_before // 2  # less whatever garbage the collection before freed
    assert walked_after < walked_before // 10
    assert out[3] == "True"  # the OpenAPI document is built, not left to the first request
    assert out[4:] == ["False", "True"]  # the app is not walked; a cycle made later is freed

    server = ServerProcess(Settings(tmp_path / "served", {"p": "k"}),
                           extra_args=["--verbose"]).start()
    assert server.stop() == 0
    assert re.search(r"\d+ objects built at start kept out of full collections",
                     server.log_path.read_text())
