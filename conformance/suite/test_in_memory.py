"""Mutate and query locally: ``add_docs``, ``delete_docs`` and ``get_docs`` run in-memory.

Checked on the cloud's request log: between opening a session and pushing it, the SDK may
authenticate and post telemetry, nothing else.
"""

import pytest

from conformance.calls import call
from conformance.suite.helpers import add, basis_vectors, get_docs, open_session, store_index
from conformance.vectors import basis


def _mutate(target, session):
    add(target, session, basis_vectors(["m1", "m2", "m3"]))
    get_docs(target, session)
    get_docs(target, session, ["m1"])
    call(session.delete_docs(["m2"]))
    add(target, session, {"m1": basis(7)})


def _index_calls(cloud, project, since):
    return [
        f"{e.method} {e.route} -> {e.status}"
        for e in cloud.requests(since=since, project=project)
        if not (e.is_auth or e.is_telemetry)
    ]


@pytest.mark.clause("MUTATIONS-IN-MEMORY")
def test_mutations_make_no_index_calls(target, client, cloud, project, index_name):
    """On a new session, adds, gets and deletes make no index-API call; the push then does.

    Troubleshooting: the SDK writes through to the cloud (``POST``/``DELETE I/{name}/docs``) or
    re-checks the index (``GET I/{name}``) on each call.
    """
    session = open_session(client, index_name)
    mark = cloud.log_mark()
    _mutate(target, session)
    assert _index_calls(cloud, project, mark) == []
    call(session.push_index())
    assert any("/index/push" in c for c in _index_calls(cloud, project, mark)), (
        "push_index() left no trace in the request log: the check above proves nothing"
    )


@pytest.mark.clause("MUTATIONS-IN-MEMORY")
def test_mutations_on_resumed_session_make_no_index_calls(
    target, make_client, cloud, project, index_name
):
    """The same on a session that resumed a cloud index.

    Troubleshooting: a resumed session forwards changes to the cloud copy instead of keeping
    them until ``push_index()``.
    """
    store_index(target, make_client(), index_name, basis_vectors(["a", "b"]))
    session = open_session(make_client(), index_name)
    mark = cloud.log_mark()
    _mutate(target, session)
    call(session.delete_docs(["a"]))
    assert _index_calls(cloud, project, mark) == []
