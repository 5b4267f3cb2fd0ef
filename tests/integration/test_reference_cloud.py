"""The reference SDK against a real mock cloud: create, push, resume, load and the errors the
SessionIndex document promises."""

import hashlib

import numpy as np
import pytest

from mock_cloud.server import ServerProcess
from reference import (
    AuthenticationError,
    DocumentInfo,
    GetDocumentsOptions,
    IndexNotFoundError,
    ModelMismatchError,
    QueryOptions,
)
from reference.embeddings import model_calls
from tests.integration.conftest import Project, new_project


def checksum(vector: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(vector, dtype="<f4").tobytes()).hexdigest()


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def custom_docs(vs: np.ndarray, prefix: str = "d") -> list[DocumentInfo]:
    return [
        DocumentInfo(f"{prefix}{i}", f"text {prefix}{i}", {"n": str(i)}, v.tolist())
        for i, v in enumerate(vs)
    ]


def test_push_stores_the_sessions_vectors_bit_for_bit(project: Project) -> None:
    vs = vectors(20)
    session = project.client().session("bits", model_id="custom")
    session.add_docs(custom_docs(vs))
    assert session.push_index().doc_count == 20
    stored = project.state()["indexes"]["bits"]
    assert stored["model_id"] == "custom"
    assert stored["checksums"] == {f"d{i}": checksum(v) for i, v in enumerate(vs)}


def test_resume_uses_stored_vectors_and_runs_no_model(project: Project) -> None:
    first = project.client().session("faq")
    first.add_docs(
        [
            DocumentInfo("pw", "I forgot my password and need to change it"),
            DocumentInfo("train", "The train to Paris leaves at noon"),
        ]
    )
    first.push_index()
    # Point the stored vector of "train" at the password text's direction: a session that
    # re-embedded the texts would still rank "pw" first.
    pw_vector = project.state()["indexes"]["faq"]
    assert pw_vector["model_id"] == "moss-minilm"
    probe = np.zeros(384, dtype=np.float32)
    probe[0] = 1.0
    project.overwrite_vector("faq", "train", probe.tolist())

    before = model_calls()
    resumed = project.client().session("faq")
    assert model_calls() == before
    assert resumed.doc_count == 2 and resumed.model_id == "moss-minilm"
    top = resumed.query("anything", QueryOptions(embedding=probe.tolist(), top_k=1, alpha=1.0))
    assert top.docs[0].id == "train"
    assert top.docs[0].score == pytest.approx(1.0, abs=1e-6)


def test_push_replaces_the_cloud_copy_with_exactly_the_session(project: Project) -> None:
    client = project.client()
    session = client.session("replace", model_id="custom")
    session.add_docs(custom_docs(vectors(5)))
    session.push_index()
    resumed = project.client().session("replace")
    resumed.delete_docs(["d0", "d1"])
    resumed.add_docs(custom_docs(vectors(2, seed=1), prefix="e"))
    resumed.push_index()
    stored = project.state()["indexes"]["replace"]
    assert sorted(stored["doc_ids"]) == ["d2", "d3", "d4", "e0", "e1"]
    assert client.get_index("replace").doc_count == 5


def test_model_is_adopted_on_resume_and_a_mismatch_names_both(project: Project) -> None:
    session = project.client().session("models", model_id="custom")
    session.add_docs(custom_docs(vectors(2)))
    session.push_index()
    assert project.client().session("models").model_id == "custom"
    with pytest.raises(ModelMismatchError) as info:
        project.client().session("models", model_id="moss-minilm")
    assert isinstance(info.value, ValueError)
    assert "'custom'" in str(info.value) and "'moss-minilm'" in str(info.value)


def test_new_index_defaults_to_minilm(project: Project) -> None:
    assert project.client().session("fresh").model_id == "moss-minilm"


def test_unknown_model_is_rejected_before_any_work(project: Project) -> None:
    with pytest.raises(ValueError, match="model_id: unknown model 'moss-hugelm'"):
        project.client().session("x", model_id="moss-hugelm")


def test_wrong_key_is_rejected_by_session_itself(project: Project) -> None:
    with pytest.raises(AuthenticationError, match=project.id):
        project.client(key="wrong").session("anything")


def test_load_index_and_client_query_read_the_pushed_index(project: Project) -> None:
    vs = vectors(6)
    session = project.client().session("kb", model_id="custom")
    session.add_docs(custom_docs(vs))
    session.push_index()
    client = project.client()
    assert client.load_index("kb") == "kb"
    result = client.query("kb", "q", QueryOptions(embedding=vs[3].tolist(), top_k=2))
    assert result.docs[0].id == "d3"
    filtered = client.query(
        "kb",
        "q",
        QueryOptions(embedding=vs[3].tolist(), filter={"field": "n", "condition": {"$gte": 4}}),
    )
    assert {d.id for d in filtered.docs} == {"d4", "d5"}
    assert [d.id for d in client.get_docs("kb", GetDocumentsOptions(doc_ids=["d1", "d0"]))] == [
        "d1",
        "d0",
    ]


def test_index_listing_and_deletion(project: Project) -> None:
    client = project.client()
    session = client.session("gone", model_id="custom")
    session.add_docs(custom_docs(vectors(3)))
    session.push_index()
    assert [i.name for i in client.list_indexes()] == ["gone"]
    assert client.delete_index("gone") is True
    assert client.list_indexes() == []
    with pytest.raises(IndexNotFoundError):
        client.get_index("gone")
    assert client.session("gone", model_id="custom").doc_count == 0


def test_projects_are_isolated(project: Project, cloud: ServerProcess) -> None:
    session = project.client().session("mine", model_id="custom")
    session.add_docs(custom_docs(vectors(1)))
    session.push_index()
    other = new_project(cloud)
    assert other.client().session("mine", model_id="custom").doc_count == 0
    with pytest.raises(AuthenticationError):
        project.client(key=other.key).session("mine")
    assert other.client().list_indexes() == []
