"""Interoperability with the published SDK (`moss`, extra `moss`) on custom vectors: what one
SDK pushes, the other resumes with the same documents and the same scores."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from reference import DocumentInfo, GetDocumentsOptions, QueryOptions
from tests.integration.conftest import Project

moss = pytest.importorskip("moss", reason="the published SDK is not installed (extra `moss`)")


@pytest.fixture
def moss_env(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # The published SDK reads the URLs when a client is built and writes a device id under
    # $HOME/.moss: keep both inside the test.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MOSS_AUTH_URL", project.auth_url)
    monkeypatch.setenv("MOSS_INDEX_URL", project.index_url)
    yield tmp_path


def moss_client(project: Project, cache: Path) -> "moss.MossClient":
    return moss.MossClient(project.id, project.key, cache_path=str(cache / "cache"))


VECTORS = np.random.default_rng(11).standard_normal((12, 16)).astype(np.float32)
TEXTS = [f"document number {i} about topic {i % 3}" for i in range(12)]
QUERY = np.random.default_rng(12).standard_normal(16).astype(np.float32)


def reference_scores(project: Project, name: str) -> tuple[list, dict[str, float]]:
    session = project.client().session(name)
    docs = session.get_docs()
    result = session.query("topic", QueryOptions(embedding=QUERY.tolist(), top_k=12, alpha=1.0))
    return docs, {d.id: d.score for d in result.docs}


async def moss_scores(project: Project, cache: Path, name: str) -> tuple[list, dict[str, float]]:
    session = await moss_client(project, cache).session(name)
    docs = await session.get_docs()
    result = await session.query(
        "topic", moss.QueryOptions(embedding=QUERY.tolist(), top_k=12, alpha=1.0)
    )
    return docs, {d.id: d.score for d in result.docs}


def as_tuples(docs: list) -> list[tuple]:
    return sorted((d.id, d.text, d.metadata) for d in docs)


def test_reference_push_resumes_in_moss(project: Project, moss_env: Path) -> None:
    session = project.client().session("from-ref", model_id="custom")
    session.add_docs([
        DocumentInfo(f"r{i}", TEXTS[i], {"topic": str(i % 3)}, VECTORS[i].tolist())
        for i in range(12)
    ])
    session.push_index()
    ref_docs, ref_scores = reference_scores(project, "from-ref")
    moss_docs, scores = asyncio.run(moss_scores(project, moss_env, "from-ref"))
    assert as_tuples(moss_docs) == as_tuples(ref_docs)
    assert scores.keys() == ref_scores.keys()
    for doc_id, score in ref_scores.items():
        assert scores[doc_id] == pytest.approx(score, abs=1e-4), doc_id


def test_moss_push_resumes_in_reference(project: Project, moss_env: Path) -> None:
    async def push() -> None:
        session = await moss_client(project, moss_env).session("from-moss", model_id="custom")
        await session.add_docs([
            moss.DocumentInfo(f"m{i}", TEXTS[i], {"topic": str(i % 3)}, VECTORS[i].tolist())
            for i in range(12)
        ])
        await session.push_index()

    asyncio.run(push())
    moss_docs, scores = asyncio.run(moss_scores(project, moss_env, "from-moss"))
    session = project.client().session("from-moss")
    assert session.model_id == "custom" and session.doc_count == 12
    ref_docs, ref_scores = reference_scores(project, "from-moss")
    assert as_tuples(ref_docs) == as_tuples(moss_docs)
    for doc_id, score in scores.items():
        assert ref_scores[doc_id] == pytest.approx(score, abs=1e-4), doc_id
    got = session.get_docs(GetDocumentsOptions(doc_ids=["m3"]))
    assert got[0].text == TEXTS[3] and got[0].metadata == {"topic": "0"}
