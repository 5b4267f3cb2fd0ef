"""SessionIndex in memory: mutation counts, argument checks and custom-vector rules.

No cloud is involved: a session that is never pushed needs none."""

import math

import numpy as np
import pytest

from reference import (
    DocumentInfo,
    GetDocumentsOptions,
    InvalidArgumentError,
    MutationOptions,
    QueryOptions,
    SessionIndex,
)


def custom_session(*docs: DocumentInfo) -> SessionIndex:
    session = SessionIndex(None, "mem", "custom")
    if docs:
        session.add_docs(list(docs))
    return session


def doc(i: str, vec: list[float], text: str = "", **meta: str) -> DocumentInfo:
    return DocumentInfo(i, text or f"text {i}", meta or None, vec)


def test_add_docs_upserts_and_counts_added_and_updated() -> None:
    session = custom_session(doc("a", [1, 0]), doc("b", [0, 1]))
    assert session.add_docs([doc("b", [1, 1], "new b"), doc("c", [1, 0])]) == (1, 1)
    assert session.doc_count == 3
    assert session.get_docs(GetDocumentsOptions(doc_ids=["b"]))[0].text == "new b"


def test_upsert_false_leaves_existing_documents_alone() -> None:
    session = custom_session(doc("a", [1, 0], "old"))
    assert session.add_docs(
        [doc("a", [0, 1], "new"), doc("b", [0, 1])], MutationOptions(upsert=False)
    ) == (1, 0)
    assert session.get_docs(GetDocumentsOptions(doc_ids=["a"]))[0].text == "old"


def test_delete_docs_counts_and_ignores_unknown_ids() -> None:
    session = custom_session(doc("a", [1, 0]), doc("b", [0, 1]), doc("c", [1, 1]))
    assert session.delete_docs(["a", "nope", "c"]) == 2
    assert [d.id for d in session.get_docs()] == ["b"]


def test_get_docs_follows_the_order_asked_and_carries_no_embeddings() -> None:
    session = custom_session(doc("a", [1, 0]), doc("b", [0, 1]), doc("c", [1, 1]))
    got = session.get_docs(GetDocumentsOptions(doc_ids=["c", "missing", "a"]))
    assert [d.id for d in got] == ["c", "a"]
    assert all(d.embedding is None for d in got)


def test_rows_stay_in_step_with_ids_after_deletes() -> None:
    rng = np.random.default_rng(7)
    raw = rng.standard_normal((40, 8))
    # Unit vectors, so that the inner product that ranks and the cosine agree.
    vectors = {f"d{i}": (v / np.linalg.norm(v)).tolist() for i, v in enumerate(raw)}
    session = custom_session(*(doc(k, v) for k, v in vectors.items()))
    session.delete_docs([f"d{i}" for i in range(0, 40, 3)])
    for doc_id, vector in vectors.items():
        if int(doc_id[1:]) % 3 == 0:
            continue
        top = session.query("", QueryOptions(embedding=vector, top_k=1, alpha=1.0)).docs[0]
        assert top.id == doc_id
        assert top.score == pytest.approx(1.0, abs=1e-5)


def test_a_bad_document_rejects_the_whole_call_and_changes_nothing() -> None:
    session = custom_session(doc("a", [1, 0]))
    with pytest.raises(ValueError, match=r"docs\['c'\].embedding: expected dimension 2, got 3"):
        session.add_docs([doc("b", [0, 1]), doc("c", [1, 2, 3])])
    assert [d.id for d in session.get_docs()] == ["a"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([DocumentInfo("", "t", embedding=[1.0])], r"docs\[0\].id"),
        ([DocumentInfo("x", 3, embedding=[1.0])], r"docs\['x'\].text"),  # type: ignore[arg-type]
        ([DocumentInfo("x", "t", {"k": [1]}, [1.0])], r"docs\['x'\].metadata\['k'\]"),
        ([DocumentInfo("x", "t", {"k": True}, [1.0])], r"docs\['x'\].metadata\['k'\]"),
        ([DocumentInfo("x", "t", embedding=[math.nan])], r"docs\['x'\].embedding: .*finite"),
        ([DocumentInfo("x", "t", embedding=[math.inf])], r"docs\['x'\].embedding: .*finite"),
        (
            [DocumentInfo("x", "t", embedding=[1.0]), DocumentInfo("x", "u", embedding=[1.0])],
            "appears twice",
        ),
        ("not a list", "docs: expected a list"),
    ],
)
def test_bad_documents_name_the_field(bad: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        custom_session().add_docs(bad)  # type: ignore[arg-type]


def test_custom_documents_without_embeddings_are_listed_by_id() -> None:
    with pytest.raises(ValueError, match="missing on 'b', 'c'"):
        custom_session().add_docs([doc("a", [1.0]), DocumentInfo("b", "t"), DocumentInfo("c", "t")])


def test_custom_query_needs_an_embedding_of_the_index_dimension() -> None:
    session = custom_session(doc("a", [1, 0]))
    with pytest.raises(ValueError, match="QueryOptions"):
        session.query("text only")
    with pytest.raises(ValueError, match="expected dimension 2, got 3"):
        session.query("x", QueryOptions(embedding=[1, 0, 0]))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (QueryOptions(embedding=[1, 0], top_k=0), "top_k"),
        (QueryOptions(embedding=[1, 0], top_k=-2), "top_k"),
        (QueryOptions(embedding=[1, 0], top_k=2.5), "top_k"),  # type: ignore[arg-type]
        (QueryOptions(embedding=[1, 0], alpha=1.5), "alpha"),
        (QueryOptions(embedding=[1, 0], alpha=-0.1), "alpha"),
        (QueryOptions(embedding=[1, 0], filter={"field": "k"}), "filter"),
    ],
)
def test_bad_query_options_are_rejected_not_defaulted(options: QueryOptions, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        custom_session(doc("a", [1, 0])).query("q", options)


def test_query_defaults_to_five_results_scored_by_clamped_cosine() -> None:
    session = custom_session(*(doc(f"d{i}", [math.cos(i / 3), math.sin(i / 3)]) for i in range(12)))
    result = session.query("", QueryOptions(embedding=[1, 0], alpha=1.0))
    assert [d.id for d in result.docs] == ["d0", "d1", "d2", "d3", "d4"]
    assert result.docs[1].score == pytest.approx(math.cos(1 / 3), abs=1e-6)
    opposite = session.query("", QueryOptions(embedding=[-1, 0], alpha=1.0, top_k=12))
    assert min(d.score for d in opposite.docs) == 0.0


def test_query_filter_keeps_only_matching_documents() -> None:
    session = custom_session(
        doc("a", [1, 0], lang="en"), doc("b", [1, 0.1], lang="fr"), doc("c", [0, 1])
    )
    result = session.query(
        "",
        QueryOptions(
            embedding=[1, 0], top_k=5, filter={"field": "lang", "condition": {"$ne": "en"}}
        ),
    )
    assert [d.id for d in result.docs] == ["b"]


def test_push_of_an_empty_session_is_rejected() -> None:
    with pytest.raises(ValueError, match="no documents"):
        custom_session().push_index()


def test_keyword_index_follows_changes_before_and_after_its_first_use() -> None:
    session = custom_session(doc("a", [1, 0], "red apples"), doc("b", [0, 1], "green pears"))
    session.delete_docs(["a"])  # before the keyword index exists
    session.add_docs([doc("c", [1, 1], "red cherries")])
    keyword = QueryOptions(embedding=[1, 0], alpha=0.0, top_k=5)
    assert [d.id for d in session.query("red", keyword).docs] == ["c"]
    session.add_docs([doc("d", [1, 0], "red wine")])  # after it exists
    session.delete_docs(["c"])
    assert [d.id for d in session.query("red", keyword).docs] == ["d"]
    assert [d.id for d in session.query("pears", keyword).docs] == ["b"]
