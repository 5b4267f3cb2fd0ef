"""Create or resume: ``client.session(index_name=...)`` returns a SessionIndex that auto-loads
an existing cloud index (no re-embedding) or starts empty."""

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    CUSTOM,
    basis_vectors,
    get_docs,
    ids,
    open_session,
    query_vector,
    store_index,
)
from conformance.targets import BUILTIN_MODELS
from conformance.vectors import basis

SESSION_METHODS = ("add_docs", "delete_docs", "get_docs", "query", "push_index")


def assert_session_index(session: object, name: str) -> None:
    assert session is not None, "session() returned None"
    assert session.name == name  # type: ignore[attr-defined]
    assert isinstance(session.doc_count, int)  # type: ignore[attr-defined]
    missing = [m for m in SESSION_METHODS if not callable(getattr(session, m, None))]
    assert not missing, f"the object session() returned has no {missing}"


@pytest.mark.clause("SESSION-RETURNS-INDEX")
def test_session_returns_session_index(client, index_name):
    """``client.session(index_name=..., model_id="custom")`` returns an object with the
    SessionIndex interface: ``name``, ``doc_count`` and the session methods.

    Troubleshooting: ``session()`` returns a coroutine the target does not await, a handle or
    job id instead of the index, or takes the name under another keyword than ``index_name``.
    """
    session = call(client.session(index_name=index_name, model_id=CUSTOM))
    assert_session_index(session, index_name)


@pytest.mark.clause("SESSION-RETURNS-INDEX")
@pytest.mark.requires(BUILTIN_MODELS)
def test_session_returns_session_index_default_model(client, index_name):
    """``client.session(index_name=...)`` exactly as the document writes it (default model).

    Troubleshooting: the default model cannot be loaded, or ``model_id`` is not optional.
    """
    session = call(client.session(index_name=index_name))
    assert_session_index(session, index_name)


@pytest.mark.clause("CREATE-STARTS-EMPTY")
def test_new_name_starts_empty(target, client, index_name):
    """A name with no cloud index gives an empty session: no documents, no results.

    Troubleshooting: the session is pre-filled from a local cache or another project's index of
    the same name, or ``doc_count`` counts something other than documents.
    """
    session = open_session(client, index_name)
    assert session.doc_count == 0
    assert get_docs(target, session) == []


@pytest.mark.clause("CREATE-STARTS-EMPTY")
def test_same_name_in_other_project_is_not_loaded(target, make_client, cloud, index_name):
    """An index of the same name in another project does not leak into a new session.

    Troubleshooting: the SDK looks indexes up by name without its project id (the
    ``X-Project-Id`` header), or shares a cache across projects.
    """
    other = cloud.add_project()
    store_index(target, make_client(other), index_name, basis_vectors(["a", "b"]))
    session = open_session(make_client(), index_name)
    assert session.doc_count == 0
    assert get_docs(target, session) == []


@pytest.mark.clause("RESUME-AUTOLOADS", "SESSION-RETURNS-INDEX")
def test_existing_index_autoloads(target, make_client, index_name):
    """Pushed from one client, the index is loaded into a session a second client opens:
    same documents (ids, texts, metadata), queryable at once.

    Troubleshooting: the session does not download the cloud index when it is opened
    (``GET I/{name}`` then ``GET I/{name}/url`` and both files), or loads it lazily only on push.
    """
    vectors = basis_vectors(["a", "b", "c"])
    texts = {"a": "apples are red", "b": "bananas are yellow", "c": "cherries are dark"}
    metadata = {"a": {"kind": "fruit", "colour": "red"}, "b": {"kind": "fruit"}}
    store_index(target, make_client(), index_name, vectors, texts=texts, metadata=metadata)

    session = open_session(make_client(), index_name)
    assert_session_index(session, index_name)
    assert session.doc_count == 3
    docs = {d.id: d for d in get_docs(target, session)}
    assert sorted(docs) == ["a", "b", "c"]
    for doc_id, text in texts.items():
        assert docs[doc_id].text == text
        assert (docs[doc_id].metadata or None) == metadata.get(doc_id)
    hits = query_vector(target, session, vectors["b"], top_k=1).docs
    assert ids(hits) == ["b"]


@pytest.mark.clause("RESUME-NO-REEMBED")
def test_resume_uses_stored_vectors(target, make_client, cloud, project, index_name):
    """After a stored vector is changed in the cloud, the resumed session ranks by the stored
    vector: the doc matches the new vector (score ~1.0, first) and no longer its old one.

    Troubleshooting: the session recomputes or caches vectors instead of using the downloaded
    index artifact's embeddings, or re-uses a local copy although ``updated_at`` changed.
    """
    vectors = basis_vectors(["a", "b", "c"])
    store_index(target, make_client(), index_name, vectors)
    planted = basis(6)
    cloud.overwrite_vector(project, index_name, "b", planted)

    session = open_session(make_client(), index_name)
    hits = query_vector(target, session, planted, top_k=3).docs
    assert hits, "the resumed session returned no results"
    assert hits[0].id == "b"
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    old = query_vector(target, session, vectors["b"], top_k=3).docs
    assert not any(h.id == "b" and h.score > 0.5 for h in old), (
        "doc 'b' still matches the vector it was pushed with"
    )


@pytest.mark.clause("RESUME-NO-REEMBED")
@pytest.mark.requires(BUILTIN_MODELS)
def test_resume_does_not_reembed_builtin_model(target, make_client, cloud, project, index_name):
    """With a built-in model, a stored vector replaced by one its text could never produce is
    what the resumed session scores: re-embedding the texts would lose it.

    Troubleshooting: the SDK re-embeds documents on load instead of reading the artifact's
    embeddings.
    """
    texts = {"a": "the cat sat on the mat", "b": "stock markets fell sharply", "c": "rain later"}
    session = open_session(make_client(), index_name, model_id=None)
    call(session.add_docs([target.document(k, v) for k, v in texts.items()]))
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    planted = basis(stored.dimension - 1, stored.dimension)
    cloud.overwrite_vector(project, index_name, "b", planted)

    resumed = open_session(make_client(), index_name, model_id=None)
    hits = query_vector(target, resumed, planted, top_k=3).docs
    assert hits and hits[0].id == "b"
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
