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
    session = _mediumlm_session_with_a_doc(target, make_client(), index_name)
    call(session.push_index())
    assert open_session(make_client(), index_name, model_id=None).model_id == "moss-mediumlm"


@pytest.mark.clause("MODEL-DEFAULT-MINILM")
def test_default_model_is_minilm(target, client, cloud, project, index_name):
    """``session(name)`` without ``model_id`` on a new index uses ``"moss-minilm"``: the session
    says so, and its push stores a ``moss-minilm`` index of 384-dimensional vectors.

    Troubleshooting: the default is another model, or ``model_id`` reports the requested value
    (None) instead of the model in use.
    """
    session = open_session(client, index_name, model_id=None)
    assert session.model_id == "moss-minilm"
    call(session.add_docs([target.document("a", "a short text"), target.document("b", "more")]))
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert stored.model_id == "moss-minilm"
    assert stored.dimension == 384


def _unavailable_model_error(exc: Exception) -> None:
    """Fail unless ``exc`` reads as "this model cannot run here", not "no such model"."""
    if isinstance(exc, ValueError):
        pytest.fail(f"moss-mediumlm was rejected as an argument: {exc!r}")
    text = str(exc).lower()
    assert "model" in text or "moss-mediumlm" in text, (
        f"unclear error for an unavailable model: {exc!r}"
    )


def _mediumlm_session_with_a_doc(target, client, index_name):
    """A ``moss-mediumlm`` session holding one embedded document; the test is skipped when the
    model cannot run on this machine (its optional files are not installed, say)."""
    try:
        session = open_session(client, index_name, model_id="moss-mediumlm")
        call(session.add_docs([target.document("a", "a short text")]))
    except ValueError:
        raise
    except Exception as exc:
        pytest.skip(f"moss-mediumlm cannot run on this machine: {str(exc).splitlines()[0]}")
    return session


@pytest.mark.clause("MODEL-CHOICES")
def test_mediumlm_is_accepted(target, client, index_name):
    """``model_id="moss-mediumlm"`` is accepted: the session opens, reports that model and
    embeds with it. A machine without the model's files may refuse to load it (when the session
    opens or when it embeds), but only with an error saying the model cannot be loaded, never a
    ``ValueError`` that calls the id unknown.

    Troubleshooting: the SDK's list of model ids lacks ``moss-mediumlm``, or maps it silently
    onto another model.
    """
    try:
        session = open_session(client, index_name, model_id="moss-mediumlm")
    except Exception as exc:
        _unavailable_model_error(exc)
        return
    assert session.model_id == "moss-mediumlm"
    try:
        call(session.add_docs([target.document("a", "a short text")]))
    except Exception as exc:
        _unavailable_model_error(exc)
        return
    assert session.doc_count == 1


@pytest.mark.clause("MODEL-CHOICES")
def test_mediumlm_embeds_with_its_own_model(target, client, cloud, project, index_name):
    """A ``moss-mediumlm`` session embeds and pushes: the cloud stores a ``moss-mediumlm``
    index whose vectors are larger than ``moss-minilm``'s 384 dimensions (PROTOCOL.md), so it is
    not the default model under another name. Skipped when the model cannot be loaded here.

    Troubleshooting: ``moss-mediumlm`` is an alias of ``moss-minilm``, or the stored model id
    is the default one.
    """
    session = _mediumlm_session_with_a_doc(target, client, index_name)
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert stored.model_id == "moss-mediumlm"
    assert stored.dimension > 384


@pytest.mark.clause("MODEL-CHOICES")
def test_custom_is_accepted(target, client, index_name):
    """``model_id="custom"`` is accepted and reported by the session.

    Troubleshooting: ``"custom"`` is only accepted on ``create_index``, not on ``session()``.
    """
    assert open_session(client, index_name, model_id=CUSTOM).model_id == CUSTOM


@pytest.mark.clause("MODEL-SET-BY-MODEL-ID")
def test_model_id_custom_governs_session(target, client, cloud, project, index_name):
    """``session(name, model_id="custom")`` gives a session on the custom model: it reports
    ``"custom"``, takes the caller's vectors (and refuses bare texts) and pushes a ``custom``
    index of the vectors' dimension.

    Troubleshooting: ``model_id`` is ignored on a new index (the default model is used), or the
    pushed index is labelled with another model.
    """
    session = open_session(client, index_name, model_id=CUSTOM)
    assert session.model_id == CUSTOM
    with pytest.raises((ValueError, TypeError)):
        call(session.add_docs([target.document("bare", "no vector")]))
    add(target, session, {"a": [0.5] * 6, "b": [-0.5] * 6})
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert (stored.model_id, stored.dimension) == (CUSTOM, 6)


@pytest.mark.clause("MODEL-SET-BY-MODEL-ID")
@pytest.mark.requires(BUILTIN_MODELS)
def test_model_id_builtin_governs_session(target, client, cloud, project, index_name):
    """``session(name, model_id="moss-minilm")`` embeds texts itself and pushes a
    ``moss-minilm`` index.

    Troubleshooting: an explicit built-in ``model_id`` is treated differently from the default.
    """
    session = open_session(client, index_name, model_id="moss-minilm")
    assert session.model_id == "moss-minilm"
    call(session.add_docs([target.document("a", "a short text")]))
    call(session.push_index())
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert (stored.model_id, stored.dimension) == ("moss-minilm", 384)


@pytest.mark.clause("MODEL-SAME-FOR-ALL-PARTICIPANTS")
def test_participants_share_the_stored_model(target, make_client, cloud, project, index_name):
    """Several participants (clients of one project) resume one custom index: one asking for
    another model gets ``ValueError``; those passing the same model or none all see the same
    documents on the same model.

    Troubleshooting: a participant's ``model_id`` silently wins over the stored model, or
    resuming with an explicit matching ``model_id`` is treated as a mismatch.
    """
    vectors = basis_vectors(["a", "b", "c"])
    store_index(target, make_client(), index_name, vectors)
    before = cloud.index(project, index_name)
    with pytest.raises(ValueError):
        open_session(make_client(), index_name, model_id="moss-minilm")
    same = open_session(make_client(), index_name, model_id=CUSTOM)
    adopted = open_session(make_client(), index_name, model_id=None)
    for participant in (same, adopted):
        assert participant.model_id == CUSTOM
        assert participant.doc_count == 3
        assert ids(query_vector(target, participant, vectors["c"], top_k=1).docs) == ["c"]
    assert cloud.index(project, index_name) == before
