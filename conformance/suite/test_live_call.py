"""Live-call context: a session is short-term context, a cloud index loaded with
``load_index()`` is long-term context, and a live call queries both for each turn."""

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    add,
    basis_vectors,
    get_docs,
    hits,
    ids,
    open_session,
    query_vector,
    store_index,
)
from conformance.vectors import basis, blend

FAQ_TEXTS = {
    "faq-refund": "Refunds are issued within 14 days.",
    "faq-hours": "Support is open 9 to 5 on weekdays.",
    "faq-shipping": "Orders ship within two business days.",
}
FAQ_VECTORS = basis_vectors(FAQ_TEXTS)  # basis 0, 1, 2


def _client_query(target, client, name, vector, top_k=3):
    options = target.query_options(embedding=list(vector), top_k=top_k, alpha=1.0)
    return call(client.query(name, "", options))


@pytest.mark.clause("LOAD-INDEX-LONG-TERM")
def test_loaded_index_serves_every_interaction(target, make_client, index_name):
    """An index pushed once is loaded by two later, separate clients (two interactions): each
    ``load_index()`` + ``client.query()`` finds the same documents, texts and metadata.

    Troubleshooting: ``load_index`` does not download the cloud index (or only its info),
    ``client.query`` looks for the index under another name than ``load_index`` returned, or
    results lose their text and metadata.
    """
    metadata = {k: {"topic": k.removeprefix("faq-")} for k in FAQ_TEXTS}
    store_index(target, make_client(), index_name, FAQ_VECTORS, texts=FAQ_TEXTS, metadata=metadata)
    answers = []
    for _ in range(2):
        reader = make_client()
        loaded = call(reader.load_index(index_name))
        assert loaded in (None, index_name), f"load_index returned {loaded!r}"
        result = _client_query(target, reader, index_name, FAQ_VECTORS["faq-hours"])
        top = result.docs[0]
        assert top.id == "faq-hours"
        assert top.text == FAQ_TEXTS["faq-hours"]
        assert (top.metadata or None) == {"topic": "hours"}
        answers.append(hits(result))
    assert answers[0] == answers[1], "two interactions got different answers from one index"


@pytest.mark.clause("LIVE-CALL-QUERY-BOTH")
def test_live_call_queries_session_and_faq_each_turn(target, make_client, index_name):
    """A live call loads the FAQ index (long-term) and opens a new session (short-term); over
    three turns it adds each utterance to the session and queries both with it. Each side
    answers from its own documents: the FAQ entry a turn asks about, and that turn's utterance.

    Troubleshooting: opening a session replaces or unloads the loaded index (or the other way
    round), the session and the loaded index share one document store, or ``client.query``
    cannot run while a session is open.
    """
    store_index(target, make_client(), index_name, FAQ_VECTORS, texts=FAQ_TEXTS)
    live = make_client()
    call(live.load_index(index_name))
    session = open_session(live, index_name + "-call")
    assert session.doc_count == 0

    turns = [
        ("turn-1", "faq-shipping", "When will my parcel arrive?"),
        ("turn-2", "faq-refund", "Can I get my money back?"),
        ("turn-3", "faq-hours", "Are you open on Saturday?"),
    ]
    for n, (turn_id, faq_id, utterance) in enumerate(turns):
        # The utterance leans towards the FAQ entry it is about, but is its own direction.
        vector = blend((0.6, FAQ_VECTORS[faq_id]), (0.8, basis(4 + n)))
        add(target, session, {turn_id: vector}, texts={turn_id: utterance})
        short = query_vector(target, session, basis(4 + n), top_k=3).docs
        long = _client_query(target, live, index_name, vector).docs
        assert ids(short)[:1] == [turn_id], f"turn {n + 1}: session answered {ids(short)}"
        assert not set(ids(short)) & set(FAQ_TEXTS), "FAQ entries leaked into the session"
        assert ids(long)[:1] == [faq_id], f"turn {n + 1}: FAQ index answered {ids(long)}"
        assert not {t for t, _, _ in turns} & set(ids(long)), "utterances leaked into the FAQ"
    assert session.doc_count == 3


@pytest.mark.clause("SESSION-SHORT-TERM")
def test_unpushed_session_changes_stay_local(target, make_client, cloud, project, index_name):
    """A session resumed from a cloud index changes its working set (adds, deletes, updates)
    without pushing: the cloud copy, an index loaded before and one loaded after all still hold
    the pushed documents.

    Troubleshooting: the session writes its changes through to the cloud, or shares its
    in-memory store with indexes the same client (or process) loaded.
    """
    store_index(target, make_client(), index_name, FAQ_VECTORS, texts=FAQ_TEXTS)
    before = cloud.index(project, index_name)
    early = make_client()
    call(early.load_index(index_name))

    worker = make_client()
    session = open_session(worker, index_name)
    add(target, session, {"scratch": basis(5), "faq-hours": basis(6)})
    call(session.delete_docs(["faq-refund"]))
    assert session.doc_count == 3

    assert cloud.index(project, index_name) == before, "unpushed changes reached the cloud"
    for reader in (early, worker, make_client()):
        if reader is not early:
            call(reader.load_index(index_name))
        result = _client_query(target, reader, index_name, basis(5), top_k=5)
        assert sorted(ids(result.docs)) == sorted(FAQ_TEXTS), "a loaded index shows session edits"
        hours = _client_query(target, reader, index_name, FAQ_VECTORS["faq-hours"], top_k=1)
        assert ids(hours.docs) == ["faq-hours"]
        assert hours.docs[0].score == pytest.approx(1.0, abs=1e-3)
    fresh = open_session(make_client(), index_name)
    assert sorted(d.id for d in get_docs(target, fresh)) == sorted(FAQ_TEXTS)
