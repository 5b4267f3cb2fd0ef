"""Behavior notes: the session's model is set by ``model_id``; resuming adopts the stored model
when it is omitted, and a different one raises ``ValueError``."""

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    CUSTOM,
    add,
    basis_vectors,
    ids,
    open_session,
    query_vector,
    store_index,
)
from conformance.targets import BUILTIN_MODELS
from conformance.vectors import basis


@pytest.mark.clause("MODEL-MISMATCH-VALUEERROR")
def test_builtin_model_on_custom_index_raises(target, make_client, cloud, project, index_name):
    """Resuming a custom-vector index with ``model_id="moss-minilm"`` raises ``ValueError`` and
    leaves the cloud index as it was.

    Troubleshooting: the SDK ignores ``model_id`` when the index exists, silently switches
    models, or raises an error that is not a ``ValueError`` subclass.
    """
    store_index(target, make_client(), index_name, basis_vectors(["a", "b"]))
    before = cloud.index(project, index_name)
    with pytest.raises(ValueError):
        open_session(make_client(), index_name, model_id="moss-minilm")
    assert cloud.index(project, index_name) == before


@pytest.mark.clause("MODEL-MISMATCH-VALUEERROR")
@pytest.mark.requires(BUILTIN_MODELS)
def test_other_model_on_builtin_index_raises(target, make_client, index_name):
    """Resuming a ``moss-minilm`` index with ``"custom"`` or ``"moss-mediumlm"`` raises
    ``ValueError``.

    Troubleshooting: the stored model id is not read from the index info, or compared
    case-insensitively / by prefix.
    """
    session = open_session(make_client(), index_name, model_id="moss-minilm")
    call(session.add_docs([target.document("a", "a short text")]))
    call(session.push_index())
    for other in (CUSTOM, "moss-mediumlm"):
        with pytest.raises(ValueError):
            open_session(make_client(), index_name, model_id=other)


@pytest.mark.clause("MODEL-ADOPTED-ON-RESUME")
def test_omitted_model_adopts_custom(target, make_client, index_name):
    """Resuming a custom-vector index without ``model_id`` gives a session on ``"custom"``:
    it reports that model, queries by vector and accepts documents with embeddings.

    Troubleshooting: the SDK applies its default model (``moss-minilm``) instead of the stored
    one when ``model_id`` is omitted, or raises a mismatch against its own default.
    """
    vectors = basis_vectors(["a", "b"])
    store_index(target, make_client(), index_name, vectors)
    session = open_session(make_client(), index_name, model_id=None)
    assert session.model_id == CUSTOM
    assert ids(query_vector(target, session, vectors["b"], top_k=1).docs) == ["b"]
    add(target, session, {"c": basis(2)})
    assert session.doc_count == 3


@pytest.mark.clause("MODEL-ADOPTED-ON-RESUME")
@pytest.mark.requires(BUILTIN_MODELS)
def test_omitted_model_adopts_builtin(target, make_client, index_name):
    """Resuming a ``moss-mediumlm`` index without ``model_id`` adopts ``moss-mediumlm`` (not
    the default ``moss-minilm``).

    Troubleshooting: the default model wins over the stored one.
    """
    session = open_session(make_client(), index_name, model_id="moss-mediumlm")
    call(session.add_docs([target.document("a", "a short text")]))
    call(session.push_index())
    assert open_session(make_client(), index_name, model_id=None).model_id == "moss-mediumlm"
