"""One workflow for a new and an existing index; extending an index across runs.

"The workflow is identical in both cases, so you do not branch on whether the index exists."
"Because ``session()`` resumes by name, the same code extends an index across runs. Resume,
append new documents, then push back to overwrite the cloud copy with the combined set."
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from conformance.calls import call
from conformance.suite.helpers import (
    add,
    basis_vectors,
    get_docs,
    ids,
    open_session,
    query_vector,
)
from conformance.vectors import basis, checksum


def workflow(target: Any, client: Any, name: str, vectors: Mapping[str, Sequence[float]]) -> Any:
    """The one function a caller writes: open the session by name, add, push. No branch on
    whether the index exists."""
    session = open_session(client, name)
    add(target, session, vectors, texts={k: f"note {k}" for k in vectors})
    call(session.push_index())
    return session


@pytest.mark.clause("CREATE-RESUME-SAME-WORKFLOW")
def test_same_workflow_creates_then_extends(target, make_client, cloud, project, index_name):
    """The same function (open session -> add -> push) runs unchanged against an absent index
    and then against the index it created: the first run creates it, the second leaves the
    union of both runs' documents, with the first run's vectors untouched.

    Troubleshooting: ``session()`` raises when the index exists (or when it does not), the
    second run's session starts empty so its push drops the first run's documents, or passing
    ``model_id`` on an existing index of the same model is rejected.
    """
    first = basis_vectors(["a", "b"])
    second = {"c": basis(2), "d": basis(3)}

    created = workflow(target, make_client(), index_name, first)
    assert created.doc_count == 2
    after_first = cloud.index(project, index_name)
    assert after_first is not None, "the first run created no cloud index"
    assert sorted(after_first.doc_ids) == ["a", "b"]

    extended = workflow(target, make_client(), index_name, second)
    assert extended.doc_count == 4, "the second run's session did not start from the cloud copy"
    stored = cloud.index(project, index_name)
    assert stored is not None
    assert sorted(stored.doc_ids) == ["a", "b", "c", "d"]
    for doc_id in ("a", "b"):
        assert stored.checksums[doc_id] == after_first.checksums[doc_id]
    for doc_id, vector in second.items():
        assert stored.checksums[doc_id] == checksum(vector)


@pytest.mark.clause("EXTEND-ACROSS-RUNS")
def test_resume_append_push_stores_combined_set(target, make_client, cloud, project, index_name):
    """Run 1 (one client) creates and pushes three documents; run 2 (another client) resumes
    without ``model_id``, appends two and pushes. The cloud holds all five, the first run's
    vectors bit for bit and its texts unchanged.

    Troubleshooting: the resumed session does not carry the stored documents into its push
    (only the appended ones reach the cloud), or it re-embeds or re-encodes the stored vectors
    on the way back up.
    """
    run1 = basis_vectors(["a", "b", "c"])
    session = open_session(make_client(), index_name)
    add(target, session, run1, texts={"a": "alpha", "b": "bravo", "c": "charlie"})
    call(session.push_index())
    before = cloud.index(project, index_name)
    assert before is not None

    resumed = open_session(make_client(), index_name, model_id=None)
    assert resumed.doc_count == 3
    run2 = {"d": basis(3), "e": basis(4)}
    add(target, resumed, run2)
    call(resumed.push_index())

    stored = cloud.index(project, index_name)
    assert stored is not None
    assert sorted(stored.doc_ids) == ["a", "b", "c", "d", "e"]
    assert stored.doc_count == 5
    changed = [k for k in run1 if stored.checksums[k] != before.checksums[k]]
    assert not changed, f"the first run's vectors changed in the cloud for {changed}"
    assert all(stored.checksums[k] == checksum(v) for k, v in run2.items())

    third = open_session(make_client(), index_name, model_id=None)
    docs = {d.id: d.text for d in get_docs(target, third)}
    assert docs["a"] == "alpha" and docs["c"] == "charlie"
    assert ids(query_vector(target, third, basis(4), top_k=1).docs) == ["e"]
