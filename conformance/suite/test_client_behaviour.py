"""Client behaviour the published SDK shows (PROTOCOL.md, "Client behaviour worth testing"):
upsert counts, delete counts, documents without embeddings, ``top_k``, cosine scores, keyword
ranking, argument checks on custom vectors, and the empty push."""

import math

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    DIM,
    add,
    basis_vectors,
    documents,
    get_docs,
    hits,
    ids,
    mutation_options,
    open_session,
    query_vector,
    store_index,
)
from conformance.vectors import basis

ARGUMENT_ERRORS = (ValueError, TypeError)


def _texts(session, target):
    return {d.id: d.text for d in get_docs(target, session)}


@pytest.mark.clause("P-ADD-UPSERTS")
def test_add_docs_upserts_and_counts(target, client, index_name):
    """``add_docs`` returns ``(added, updated)``; an existing id is replaced by default (text
    and vector), a new one added.

    Troubleshooting: the counts are swapped or lumped together, an existing id is appended a
    second time, or the update keeps the old vector.
    """
    session = open_session(client, index_name)
    assert tuple(add(target, session, basis_vectors(["a", "b"]))) == (2, 0)
    result = add(target, session, {"a": basis(5), "c": basis(2)}, texts={"a": "a, rewritten"})
    assert tuple(result) == (1, 1)
    assert session.doc_count == 3
    assert _texts(session, target)["a"] == "a, rewritten"
    top = query_vector(target, session, basis(5), top_k=1).docs
    assert ids(top) == ["a"] and top[0].score == pytest.approx(1.0, abs=1e-4)
    old = dict(hits(query_vector(target, session, basis(0), top_k=3)))
    assert old.get("a", 0.0) == pytest.approx(0.0, abs=1e-4), "'a' kept its old vector"
    assert tuple(add(target, session, {"a": basis(6)})) == (0, 1)
    assert session.doc_count == 3


@pytest.mark.clause("P-ADD-UPSERTS")
def test_add_docs_without_upsert_keeps_existing(target, client, index_name):
    """With ``MutationOptions(upsert=False)`` an existing id is left as it was and not counted;
    new ids are still added.

    Troubleshooting: the option is ignored (the document is replaced) or the whole call is
    rejected because one id exists.
    """
    options = mutation_options(target, upsert=False)
    session = open_session(client, index_name)
    add(target, session, basis_vectors(["a", "b"]), texts={"a": "original"})
    docs = documents(target, {"a": basis(5), "c": basis(2)}, texts={"a": "replacement"})
    assert tuple(call(session.add_docs(docs, options))) == (1, 0)
    assert session.doc_count == 3
    assert _texts(session, target)["a"] == "original"
    assert ids(query_vector(target, session, basis(0), top_k=1).docs) == ["a"]


@pytest.mark.clause("P-DELETE-COUNTS")
def test_delete_docs_counts_and_ignores_unknown(target, client, index_name):
    """``delete_docs`` returns how many documents it removed; unknown (or already deleted) ids
    are ignored, not an error.

    Troubleshooting: the count is the number of ids asked for, or an unknown id raises
    (``NOT_FOUND``) and stops the rest of the call.
    """
    session = open_session(client, index_name)
    add(target, session, basis_vectors(["a", "b", "c"]))
    assert call(session.delete_docs(["a", "no-such-id"])) == 1
    assert call(session.delete_docs(["a"])) == 0
    assert session.doc_count == 2
    assert call(session.delete_docs(["ghost", "b", "c"])) == 2
    assert session.doc_count == 0
    assert get_docs(target, session) == []


@pytest.mark.clause("P-GET-DOCS-NO-EMBEDDINGS")
def test_get_docs_returns_no_embeddings(target, make_client, index_name):
    """``get_docs`` (all documents, or some by id) returns ids, texts and metadata without
    embeddings, on a new session and on a resumed one.

    Troubleshooting: documents are returned as they were added, vectors included, or a resumed
    session fills ``embedding`` from the downloaded artifact.
    """
    vectors = basis_vectors(["a", "b"])
    metadata = {"a": {"kind": "x"}}
    session = store_index(target, make_client(), index_name, vectors, metadata=metadata)
    resumed = open_session(make_client(), index_name)
    for s in (session, resumed):
        for docs in (get_docs(target, s), get_docs(target, s, ["b", "a"])):
            assert sorted(ids(docs)) == ["a", "b"]
            with_vectors = [d.id for d in docs if getattr(d, "embedding", None) is not None]
            assert not with_vectors, f"get_docs returned embeddings for {with_vectors}"
            by_id = {d.id: d for d in docs}
            assert by_id["a"].text == "document a"
            assert (by_id["a"].metadata or None) == {"kind": "x"}


@pytest.mark.clause("P-QUERY-TOP-K")
def test_query_top_k_defaults_to_five(target, client, index_name):
    """Without ``top_k`` a query returns 5 results; with ``top_k`` that many; never more than
    the session holds.

    Troubleshooting: the default is another number (10 is common), or ``top_k`` is ignored for
    custom-vector queries.
    """
    session = open_session(client, index_name)
    add(target, session, basis_vectors([f"d{i}" for i in range(7)]))
    assert len(query_vector(target, session, basis(0)).docs) == 5
    assert len(query_vector(target, session, basis(0), top_k=2).docs) == 2
    assert len(query_vector(target, session, basis(0), top_k=10).docs) == 7


@pytest.mark.clause("P-QUERY-COSINE")
def test_score_is_clamped_cosine(target, client, index_name):
    """With caller vectors of different lengths and ``alpha=1.0``, each result's score is the
    cosine similarity with the query (length does not matter), clamped at 0 for vectors that
    point away.

    Troubleshooting: the score is the raw inner product (depends on vector length), a distance,
    or negative for opposed vectors.
    """
    pad = [0.0] * (DIM - 2)
    vectors = {
        "same": [6.0, 8.0, *pad],  # twice the query: cosine 1
        "close": [4.0, 3.0, *pad],  # cosine 24/25
        "partial": [0.5, 0.0, *pad],  # cosine 3/5
        "orthogonal": [0.0, 0.0, 1.0, *pad[1:]],
        "opposed": [-3.0, -4.0, *pad],  # cosine -1, clamped
        "away": [-4.0, 3.0, *pad],  # cosine 0
        "slightly_away": [-1.0, 0.5, *pad],  # cosine -0.0894..., clamped
    }
    query = [3.0, 4.0, *pad]
    norm = math.hypot(3.0, 4.0)
    expected = {
        k: max(0.0, sum(a * b for a, b in zip(v, query, strict=True)) / (math.hypot(*v) * norm))
        for k, v in vectors.items()
    }
    session = open_session(client, index_name)
    add(target, session, vectors)
    scores = dict(hits(query_vector(target, session, query, top_k=len(vectors))))
    assert sorted(scores) == sorted(vectors)
    for doc_id, want in expected.items():
        assert scores[doc_id] == pytest.approx(want, abs=1e-4), f"score of {doc_id!r}"


@pytest.mark.clause("P-QUERY-ALPHA-KEYWORD")
def test_alpha_zero_ranks_by_keyword(target, client, index_name):
    """``alpha=0.0`` ranks by keyword: the one document containing the query's rare word comes
    first although its vector is orthogonal to the query vector, which ``alpha=1.0`` ranks
    first.

    Troubleshooting: ``alpha`` is ignored when an embedding is given, or its meaning is
    inverted (0 = semantic).
    """
    texts = {
        "vector-match": "general notes about the weather",
        "keyword-match": "the zebra crossing near the station",
        "other": "opening hours of the museum",
    }
    vectors = {"vector-match": basis(0), "keyword-match": basis(1), "other": basis(2)}
    session = open_session(client, index_name)
    add(target, session, vectors, texts=texts)
    semantic = query_vector(target, session, basis(0), text="zebra", top_k=3, alpha=1.0)
    keyword = query_vector(target, session, basis(0), text="zebra", top_k=3, alpha=0.0)
    assert ids(semantic.docs)[:1] == ["vector-match"]
    assert ids(keyword.docs)[:1] == ["keyword-match"], f"alpha=0.0 ranked {ids(keyword.docs)}"


@pytest.mark.clause("P-CUSTOM-DIMENSION")
def test_document_of_other_dimension_or_nan_rejected(target, client, index_name):
    """On a custom session holding 8-dimensional vectors, a document whose embedding has
    another length, or holds NaN, is rejected with ``ValueError`` (the SDK's
    ``INVALID_ARGUMENT``) and nothing is added.

    Troubleshooting: the SDK pads or truncates vectors, or stores NaN and breaks every later
    score.
    """
    session = open_session(client, index_name)
    add(target, session, basis_vectors(["a", "b"]))
    nan = [1.0, math.nan, *[0.0] * (DIM - 2)]
    for bad in ([1.0, 0.0], [0.1] * (DIM + 1), nan):
        with pytest.raises(ValueError):
            add(target, session, {"bad": bad})
        assert session.doc_count == 2
    assert ids(query_vector(target, session, basis(1), top_k=1).docs) == ["b"]


@pytest.mark.clause("P-CUSTOM-DIMENSION")
def test_query_of_other_dimension_or_nan_rejected(target, client, index_name):
    """A query embedding of another length, or holding NaN, raises ``ValueError``.

    Troubleshooting: the SDK compares vectors of different lengths (zip truncates) or returns
    NaN scores.
    """
    session = open_session(client, index_name)
    add(target, session, basis_vectors(["a", "b"]))
    for bad in ([1.0, 0.0], [0.1] * (DIM + 1), [math.nan, *[0.0] * (DIM - 1)]):
        with pytest.raises(ValueError):
            query_vector(target, session, bad)


@pytest.mark.clause("P-PUSH-EMPTY-REJECTED")
def test_push_of_empty_session_rejected(target, make_client, cloud, project, index_name):
    """``push_index()`` on a new, empty session raises ``ValueError`` and creates nothing; on a
    resumed session emptied by deletes it raises too and leaves the cloud copy as it was.

    Troubleshooting: the SDK creates an empty index, or deletes the cloud copy, instead of
    refusing.
    """
    empty = open_session(make_client(), index_name)
    with pytest.raises(ValueError):
        call(empty.push_index())
    assert cloud.index(project, index_name) is None

    store_index(target, make_client(), index_name, basis_vectors(["a", "b"]))
    before = cloud.index(project, index_name)
    emptied = open_session(make_client(), index_name)
    call(emptied.delete_docs(["a", "b"]))
    with pytest.raises(ValueError):
        call(emptied.push_index())
    assert cloud.index(project, index_name) == before
