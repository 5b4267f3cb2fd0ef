"""Building blocks for suite tests: open, fill, store and query sessions through any target.

Every SDK call goes through :func:`conformance.calls.call`, so the same test drives sync and
async SDKs. Custom vectors (``model_id="custom"``) keep tests runnable on targets without the
built-in models.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from conformance.calls import call
from conformance.targets import Target
from conformance.vectors import basis

CUSTOM = "custom"
DIM = 8


def open_session(client: Any, name: str, model_id: str | None = CUSTOM) -> Any:
    """``client.session(name, model_id=...)``; ``model_id=None`` leaves it out."""
    if model_id is None:
        return call(client.session(name))
    return call(client.session(name, model_id=model_id))


def documents(
    target: Target,
    vectors: Mapping[str, Sequence[float]] | None = None,
    *,
    texts: Mapping[str, str] | None = None,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Any]:
    """The target's documents for ``vectors`` (id -> embedding); with ``vectors=None``, text
    documents for ``texts`` without embeddings. Texts default to ``"document <id>"``."""
    ids = list(vectors) if vectors is not None else list(texts or {})
    return [
        target.document(
            doc_id,
            (texts or {}).get(doc_id, f"document {doc_id}"),
            (metadata or {}).get(doc_id),
            None if vectors is None else list(vectors[doc_id]),
        )
        for doc_id in ids
    ]


def basis_vectors(ids: Iterable[str], dim: int = DIM) -> dict[str, list[float]]:
    """One orthogonal unit vector per id: each doc is the only exact match of its own vector."""
    return {doc_id: basis(i, dim) for i, doc_id in enumerate(ids)}


def add(target: Target, session: Any, vectors: Mapping[str, Sequence[float]], **kw: Any) -> Any:
    """``session.add_docs`` with documents built by :func:`documents`."""
    return call(session.add_docs(documents(target, vectors, **kw)))


def store_index(
    target: Target,
    client: Any,
    name: str,
    vectors: Mapping[str, Sequence[float]],
    **kw: Any,
) -> Any:
    """Open a custom-model session ``name``, add ``vectors`` (id -> embedding), push it; returns
    the session. ``texts=`` / ``metadata=`` are passed on to :func:`documents`."""
    session = open_session(client, name)
    add(target, session, vectors, **kw)
    call(session.push_index())
    return session


def query_vector(
    target: Target,
    session_or_client: Any,
    vector: Sequence[float],
    *,
    text: str = "",
    top_k: int | None = None,
    alpha: float | None = 1.0,
) -> Any:
    """``session.query(text, QueryOptions(embedding=vector, ...))``; pure semantic by default
    so scores are the vector similarity alone."""
    options = target.query_options(embedding=list(vector), top_k=top_k, alpha=alpha)
    return call(session_or_client.query(text, options))


def get_docs(target: Target, session: Any, doc_ids: Sequence[str] | None = None) -> list[Any]:
    if doc_ids is None:
        return list(call(session.get_docs()))
    return list(call(session.get_docs(target.get_documents_options(doc_ids=doc_ids))))


def ids(docs: Iterable[Any]) -> list[str]:
    return [d.id for d in docs]


def hits(result: Any) -> list[tuple[str, float]]:
    """A query result's documents as ``(id, score)``, best first."""
    return [(d.id, float(d.score)) for d in result.docs]


def index_calls(cloud: Any, project: Any, since: int) -> list[str]:
    """The project's index-API calls logged after ``since``, as ``"METHOD route -> status"``:
    token requests and telemetry are left out (the document allows both)."""
    return [
        f"{e.method} {e.route} -> {e.status}"
        for e in cloud.requests(since=since, project=project)
        if not (e.is_auth or e.is_telemetry)
    ]


def mutation_options(target: Target, *, upsert: bool) -> Any:
    """The target's ``MutationOptions(upsert=...)``; skips the test when it has none."""
    factory = getattr(target, "mutation_options", None)
    if not callable(factory):
        pytest.skip(f"target {target.name!r} has no mutation_options(): cannot pass upsert")
    try:
        return factory(upsert=upsert)
    except NotImplementedError as exc:
        pytest.skip(f"target {target.name!r} cannot build MutationOptions: {exc}")
