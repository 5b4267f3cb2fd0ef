"""The published SDK ``moss`` against the mock cloud, unchanged: custom embeddings only.

The server runs in a child process: ``MossClient.session()`` blocks in native code without
releasing the GIL, so a server thread in the test process could never answer it.
"""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mock_cloud.server import ServerProcess
from tests.mock_cloud.conftest import CONTROL_KEY, PROJECTS, settings_for

moss = pytest.importorskip("moss")
pytestmark = pytest.mark.interop
DIM = 8


@pytest.fixture(scope="module")
def cloud_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(settings_for(tmp_path_factory.mktemp("moss-cloud"))) as server:
        yield server


@pytest.fixture
def sdk(cloud_process: ServerProcess, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    """Env pointing the SDK at the mock cloud (read when a client is built), HOME in tmp."""
    httpx.post(f"{cloud_process.base_url}/_mock/reset",
               headers={"X-Control-Key": CONTROL_KEY}).raise_for_status()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MOSS_AUTH_URL", cloud_process.auth_url)
    monkeypatch.setenv("MOSS_INDEX_URL", cloud_process.index_url)
    return cloud_process


def client(tmp_path: Path, key: str | None = None) -> Any:
    return moss.MossClient("alpha", key or PROJECTS["alpha"], cache_path=str(tmp_path / "cache"))


def vectors(n: int, seed: int = 1) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def documents(matrix: np.ndarray) -> list[Any]:
    return [moss.DocumentInfo(id=f"doc-{i}", text=f"document number {i} about cats",
                              metadata={"group": str(i % 3)}, embedding=row.tolist())
            for i, row in enumerate(matrix)]


def hits(result: Any) -> list[tuple[str, float]]:
    return [(d.id, round(d.score, 5)) for d in result.docs]


def control_state(server: ServerProcess) -> dict[str, Any]:
    reply = httpx.get(f"{server.base_url}/_mock/state", headers={"X-Control-Key": CONTROL_KEY})
    state: dict[str, Any] = reply.json()
    return state


def test_push_resume_and_load_index(sdk: ServerProcess, tmp_path: Path) -> None:
    matrix = vectors(20)
    probe = QueryProbe(matrix[3])

    async def scenario() -> dict[str, Any]:
        first = client(tmp_path)
        session = await first.session("interop", model_id="custom")
        assert session.doc_count == 0
        assert await session.add_docs(documents(matrix)) == (20, 0)
        before = hits(await session.query("cats", probe.options()))
        pushed = await session.push_index()
        assert pushed.status == "completed" and pushed.job_id
        before_docs = [(d.id, d.text, d.metadata) for d in await session.get_docs()]
        await session.close()
        await first.close()

        second = client(tmp_path)
        resumed = await second.session("interop")
        after = hits(await resumed.query("cats", probe.options()))
        out = {"count": resumed.doc_count, "model": resumed.model_id, "before": before,
               "after": after, "before_docs": before_docs,
               "after_docs": [(d.id, d.text, d.metadata) for d in await resumed.get_docs()]}
        await second.load_index("interop")
        out["loaded"] = hits(await second.query("interop", "cats", probe.options()))
        out["info"] = (await second.get_index("interop")).name
        await resumed.close()
        await second.close()
        return out

    out = asyncio.run(scenario())
    assert out["count"] == 20 and out["model"] == "custom"
    assert out["before"][0][0] == "doc-3" and out["before"][0][1] == pytest.approx(1.0)
    assert out["after"] == out["before"]
    assert out["loaded"] == out["before"]
    assert out["after_docs"] == out["before_docs"]
    assert out["info"] == "interop"
    state = control_state(sdk)["projects"]["alpha"]["indexes"]["interop"]
    assert state["model_id"] == "custom" and state["dimension"] == DIM
    assert state["doc_ids"] == [f"doc-{i}" for i in range(20)]


class QueryProbe:
    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector.tolist()

    def options(self) -> Any:
        return moss.QueryOptions(embedding=self.vector, top_k=5, alpha=1.0)


def test_stored_vectors_are_what_a_resume_uses(sdk: ServerProcess, tmp_path: Path) -> None:
    """Overwrite one stored vector through the control API: the resumed session's scores
    follow it (a client that re-embedded would not see the change)."""
    matrix = vectors(6, seed=3)

    async def push() -> None:
        first = client(tmp_path)
        session = await first.session("vectors", model_id="custom")
        await session.add_docs(documents(matrix))
        await session.push_index()
        await first.close()

    asyncio.run(push())
    target = np.zeros(DIM, np.float32)
    target[0] = 1.0
    reply = httpx.put(f"{sdk.base_url}/_mock/indexes/alpha/vectors/vectors/doc-4",
                      json={"embedding": target.tolist()},
                      headers={"X-Control-Key": CONTROL_KEY})
    assert reply.status_code == 200, reply.text

    async def resume() -> list[tuple[str, float]]:
        second = client(tmp_path)
        session = await second.session("vectors")
        found = hits(await session.query("", QueryProbe(target).options()))
        await second.close()
        return found

    top = asyncio.run(resume())
    assert top[0][0] == "doc-4" and top[0][1] == pytest.approx(1.0)


def test_model_mismatch_on_resume_raises_value_error(sdk: ServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        first = client(tmp_path)
        session = await first.session("mismatch", model_id="custom")
        await session.add_docs(documents(vectors(3)))
        await session.push_index()
        await first.close()
        second = client(tmp_path)
        try:
            with pytest.raises(ValueError, match="custom"):
                await second.session("mismatch", model_id="moss-minilm")
        finally:
            await second.close()

    asyncio.run(scenario())


def test_a_wrong_key_makes_session_raise(sdk: ServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        bad = client(tmp_path, key="not-the-key")
        with pytest.raises(moss.MossError) as raised:
            await bad.session("anything", model_id="custom")
        assert raised.value.code == "UNAUTHORIZED"

    asyncio.run(scenario())
    log = httpx.get(f"{sdk.base_url}/_mock/requests",
                    headers={"X-Control-Key": CONTROL_KEY}).json()
    assert ("/auth/token", 401) in [(e["route"], e["status"]) for e in log]


def test_client_side_index_calls(sdk: ServerProcess, tmp_path: Path) -> None:
    """get_docs / add_docs / delete_docs / list / delete through MossClient, and
    create_index (init, presigned PUT, confirm, status)."""

    async def scenario() -> dict[str, Any]:
        c = client(tmp_path)
        made = await c.create_index("made", documents(vectors(4)), model_id="custom")
        out: dict[str, Any] = {"made": made.doc_count}
        await c.add_docs("made", [moss.DocumentInfo(id="extra", text="t",
                                                    embedding=vectors(1, 9)[0].tolist())])
        await c.delete_docs("made", ["doc-0"])
        docs = await c.get_docs("made", moss.GetDocumentsOptions(doc_ids=["doc-1", "extra"]))
        out["docs"] = sorted(d.id for d in docs)
        out["names"] = [i.name for i in await c.list_indexes()]
        out["deleted"] = await c.delete_index("made")
        out["after"] = [i.name for i in await c.list_indexes()]
        await c.close()
        return out

    out = asyncio.run(scenario())
    assert out["docs"] == ["doc-1", "extra"]
    assert out["names"] == ["made"] and out["deleted"] is True and out["after"] == []
    routes = [e["route"] for e in httpx.get(f"{sdk.base_url}/_mock/requests",
                                            headers={"X-Control-Key": CONTROL_KEY}).json()]
    assert {"/index/init", "/_uploads/{jobId}", "/index/{jobId}/confirm",
            "/index/{jobId}/status"} <= set(routes)


def test_a_large_push_streams_through_the_row_helper(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The server drops each batch of embedding text the helper finds printable again (every
    # number a float that float32 holds exactly): it keeps only what it parsed itself at the
    # end. So this checks that the published SDK prints its vectors that way, as well as the
    # round trip.
    from mock_cloud.store import vector_checksum
    from protocol.push import PushReader

    matrix = np.random.default_rng(5).standard_normal((800, 384)).astype(np.float32)
    settings = settings_for(tmp_path / "cloud")
    with ServerProcess(settings, extra_args=["--verbose"]) as server:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("MOSS_AUTH_URL", server.auth_url)
        monkeypatch.setenv("MOSS_INDEX_URL", server.index_url)

        async def push() -> None:
            sdk_client = client(tmp_path)
            session = await sdk_client.session("large", model_id="custom")
            await session.add_docs(documents(matrix))
            assert (await session.push_index()).status == "completed"
            await session.close()
            await sdk_client.close()

        asyncio.run(push())
        state = control_state(server)
    stored = state["projects"]["alpha"]["indexes"]["large"]
    assert stored["doc_count"] == 800
    assert [stored["checksums"][f"doc-{i}"] for i in range(800)] == [
        vector_checksum(row.tobytes()) for row in matrix]
    log = (settings.data_dir / "server.log").read_text()
    found = re.search(r"rows parsed by the helper \((\d+) of (\d+) batches\), (\d+) bytes of "
                      r"their text kept", log)
    assert found is not None, log[-2000:]
    helped, batches, kept = map(int, found.groups())
    assert helped >= 1
    row_bytes = 384 * 25  # at most this per row of text
    assert kept <= (batches - helped) * (PushReader.BATCH_BYTES + row_bytes)
