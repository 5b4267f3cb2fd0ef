"""Persist to the cloud: ``push_index()`` uploads documents and their locally computed
embeddings under the session's name, creating or replacing that index; no re-embedding."""

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    DIM,
    add,
    basis_vectors,
    get_docs,
    open_session,
    store_index,
)
from conformance.vectors import basis, checksum


@pytest.mark.clause("PUSH-CREATES")
def test_push_creates_index(target, client, cloud, project, index_name):
    """A new session pushed creates the cloud index under its name with exactly its documents.

    Troubleshooting: the push goes to another name or project, is sent before the documents
    are added, or needs a separate create call.
    """
    session = open_session(client, index_name)
    add(target, session, basis_vectors(["a", "b", "c"]))
    assert cloud.index(project, index_name) is None, "the index exists before push_index()"
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None, f"no index {index_name!r} in the cloud after push_index()"
    assert sorted(stored.doc_ids) == ["a", "b", "c"]
    assert stored.model_id == "custom"
    assert stored.dimension == DIM


@pytest.mark.clause("PUSH-REPLACES")
def test_push_replaces_index(target, make_client, cloud, project, index_name):
    """Resume, delete one document, change one, add one, push: the cloud holds exactly the
    session's documents, nothing appended and nothing left behind.

    Troubleshooting: the push appends (``POST I/{name}/docs``) instead of replacing, or sends
    only the documents added in this session.
    """
    store_index(target, make_client(), index_name, basis_vectors(["a", "b", "c"]))
    before = cloud.index(project, index_name)
    assert before is not None
    session = open_session(make_client(), index_name)
    call(session.delete_docs(["b"]))
    add(target, session, {"a": [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0], "d": basis(3)})
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert sorted(stored.doc_ids) == ["a", "c", "d"], "the cloud copy is not the session's set"
    assert stored.doc_count == 3
    assert stored.checksums["a"] != before.checksums["a"], "the changed document kept its vector"
    assert stored.checksums["c"] == before.checksums["c"], "an untouched document changed"


@pytest.mark.clause("PUSH-NO-SERVER-REEMBED")
def test_pushed_vectors_stored_bit_for_bit(target, client, cloud, project, index_name):
    """The vectors the cloud stores are exactly the ones the session was given (sha256 of the
    float32 little-endian bytes, per document).

    Troubleshooting: the SDK normalises, quantises or re-embeds vectors before upload, or
    pushes them in another document order than their ids.
    """
    vectors = {
        f"doc-{i}": [((i * 7 + k * 3) % 17 - 8) / 16 for k in range(DIM)] for i in range(5)
    }
    store_index(target, client, index_name, vectors)
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert sorted(stored.checksums) == sorted(vectors)
    differ = sorted(k for k, v in vectors.items() if stored.checksums[k] != checksum(v))
    assert not differ, f"the cloud stores other vectors than the session was given for {differ}"


@pytest.mark.clause("PUSH-UPLOADS-DOCS-AND-EMBEDDINGS")
def test_push_uploads_documents_and_vectors(target, make_client, cloud, project, index_name):
    """After a push the cloud holds, under the session's name and nowhere else, the session's
    ids with their vectors (per-document checksums), and their texts and metadata: a fresh
    client reads them back (``client.get_docs`` when the SDK has it, and a resumed session).

    Troubleshooting: the push sends ids and vectors but drops texts or metadata (or the other
    way round), pairs vectors with the wrong ids, or uses a name of its own.
    """
    vectors = {f"doc-{i}": [((i + 1) * (k + 2) % 7 - 3) / 4 for k in range(DIM)] for i in range(4)}
    texts = {k: f"text of {k}, with unicode: café ✓" for k in vectors}
    metadata = {"doc-0": {"kind": "faq", "n": "10"}, "doc-2": {"kind": "note"}}
    session = open_session(make_client(), index_name)
    add(target, session, vectors, texts=texts, metadata=metadata)
    assert cloud.state(project) == {}
    call(session.push_index())

    assert sorted(cloud.state(project)) == [index_name]
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert sorted(stored.doc_ids) == sorted(vectors)
    assert stored.checksums == {k: checksum(v) for k, v in vectors.items()}

    reader = make_client()
    copies = [get_docs(target, open_session(reader, index_name))]
    if callable(getattr(reader, "get_docs", None)):
        copies.append(list(call(reader.get_docs(index_name))))
    for docs in copies:
        by_id = {d.id: d for d in docs}
        assert sorted(by_id) == sorted(vectors)
        for doc_id in vectors:
            assert by_id[doc_id].text == texts[doc_id]
            assert (by_id[doc_id].metadata or None) == metadata.get(doc_id)
