"""Behavior notes: with ``model_id="custom"`` every document carries its own ``.embedding`` and
every query passes ``QueryOptions.embedding``."""

import pytest

from conformance.calls import call
from conformance.suite.helpers import add, basis_vectors, ids, open_session, query_vector
from conformance.vectors import basis

ARGUMENT_ERRORS = (ValueError, TypeError)


@pytest.mark.clause("CUSTOM-DOC-NEEDS-EMBEDDING")
def test_document_without_embedding_rejected(target, client, index_name):
    """``add_docs`` on a custom session rejects a document without an embedding, alone or in a
    batch with embedded ones, and adds nothing.

    Troubleshooting: the SDK falls back to a built-in model for bare documents, stores a zero
    vector, or adds the embedded part of a mixed batch.
    """
    session = open_session(client, index_name)
    with pytest.raises(ARGUMENT_ERRORS):
        call(session.add_docs([target.document("bare", "no vector here")]))
    assert session.doc_count == 0
    mixed = [target.document("ok", "has one", None, basis(0)), target.document("bare", "none")]
    with pytest.raises(ARGUMENT_ERRORS):
        call(session.add_docs(mixed))
    add(target, session, {"ok": basis(0)})
    assert session.doc_count == 1


@pytest.mark.clause("CUSTOM-QUERY-NEEDS-EMBEDDING")
def test_query_without_embedding_rejected(target, client, index_name):
    """A custom session's ``query`` without ``QueryOptions.embedding`` raises, with or without
    other options; with an embedding it works.

    Troubleshooting: the SDK embeds the query text with a built-in model, or returns an empty
    result instead of rejecting the call.
    """
    session = open_session(client, index_name)
    vectors = basis_vectors(["a", "b"])
    add(target, session, vectors)
    with pytest.raises(ARGUMENT_ERRORS):
        call(session.query("document a"))
    with pytest.raises(ARGUMENT_ERRORS):
        call(session.query("document a", target.query_options(top_k=2)))
    assert ids(query_vector(target, session, vectors["a"], top_k=1).docs) == ["a"]
