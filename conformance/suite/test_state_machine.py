"""Random programs of add / delete / get / query / push / resume, run on the target and on the
plain-Python model of the document (:mod:`conformance.model`), compared after every step.

The programs come from a Hypothesis state machine; the profile (``ci`` by default, see
:mod:`conformance.hypothesis_profiles`) sets how many and how long. A failure shrinks to a short
program, printed in the test's output (and in the report's message), that can be pasted into a
regression test. Shrinking replays the program many times, each resume with a new client, so a
target that fails here makes this test slow: Hypothesis gives up shrinking after 5 minutes.

Vectors are unit length: the protocol defines the score (clamped cosine) but not how results
are ordered when vectors differ in length (the published SDK ranks by inner product), and for
unit vectors the two orders agree.
"""

import contextlib
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.calls import call, close_resource
from conformance.cloud import Cloud, Project
from conformance.hypothesis_profiles import suite_settings
from conformance.model import ModelDoc, SessionModel, query_problems
from conformance.strategies import DIM, custom_vectors, doc_ids, filters, metadata, texts
from conformance.suite.helpers import CUSTOM, hits
from conformance.targets import Target

DocTuple = tuple[str, str, dict[str, str] | None, list[float]]
RESUME_EVERY = 3  # at least this many other steps between two resumes


def doc_tuples(ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[DocTuple]:
    ids = doc_ids() if ids is None else ids
    return st.tuples(ids, texts(), metadata(), custom_vectors(DIM, unit=True))


def new_docs() -> st.SearchStrategy[list[DocTuple]]:
    return st.lists(doc_tuples(), min_size=1, max_size=4, unique_by=lambda d: d[0])


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _metadata(value: Any) -> dict[str, Any] | None:
    # An SDK may hand back None or {} for "no metadata": both mean the same to a filter.
    return dict(value) if value else None


class SessionMachine(RuleBasedStateMachine):
    """One index name per program; the session is reopened by name on ``resume``, from a new
    client each time (another run of the caller's code)."""

    ids = Bundle("ids")

    def __init__(self, target: Target, cloud: Cloud, project: Project) -> None:
        super().__init__()
        self.target, self.cloud, self.project = target, cloud, project
        self.name = "sm-" + secrets.token_hex(5)
        self.clients: list[Any] = []
        self.model = SessionModel()
        self.session = self._open(CUSTOM)
        # Steps since the session was (re)opened. Resuming costs a new client and a download,
        # and left alone Hypothesis picked it for nearly half the steps (few rules are enabled
        # while the id bundle is empty): a few steps between resumes keep the programs about
        # the session's contents.
        self.steps_since_open = 0
        # MutationOptions(upsert=False), when the target can express it.
        self.no_upsert: Any = None
        factory = getattr(target, "mutation_options", None)
        if callable(factory):
            with contextlib.suppress(NotImplementedError):
                self.no_upsert = factory(upsert=False)

    # --- plumbing -----------------------------------------------------------------------------
    def _open(self, model_id: str | None) -> Any:
        client = self.target.client(
            project_id=self.project.id,
            project_key=self.project.key,
            auth_url=self.cloud.auth_url,
            index_url=self.cloud.index_url,
        )
        self.clients.append(client)
        if model_id is None:
            return call(client.session(self.name))
        return call(client.session(self.name, model_id=model_id))

    def _documents(self, docs: Sequence[DocTuple]) -> list[Any]:
        return [self.target.document(i, t, m, v) for i, t, m, v in docs]

    def _add(self, docs: Sequence[DocTuple], options: Any = None) -> list[str]:
        built = self._documents(docs)
        result = call(self.session.add_docs(built) if options is None
                      else self.session.add_docs(built, options))
        expected = self.model.add(
            [ModelDoc(i, t, m, tuple(v)) for i, t, m, v in docs], upsert=options is None
        )
        assert tuple(result) == expected, (
            f"add_docs({[d[0] for d in docs]}) returned {tuple(result)}, expected (added, "
            f"updated) = {expected}"
        )
        return [d[0] for d in docs]

    def teardown(self) -> None:
        for client in self.clients:
            # The comparison is the verdict; a client that fails to close is not.
            with contextlib.suppress(Exception):
                close_resource(client)

    # --- rules --------------------------------------------------------------------------------
    @rule(target=ids, docs=new_docs())
    def add(self, docs: list[DocTuple]) -> Any:
        return multiple(*self._add(docs))

    @rule(target=ids, first=ids, more=st.lists(ids, max_size=2), data=st.data())
    def update(self, first: str, more: list[str], data: st.DataObject) -> Any:
        """Re-add ids that were added before (maybe deleted since) with new content."""
        chosen = _unique([first, *more])
        docs = [data.draw(doc_tuples(st.just(i))) for i in chosen]
        return multiple(*self._add(docs))

    @precondition(lambda self: self.no_upsert is not None)
    @rule(target=ids, first=ids, extra=new_docs(), data=st.data())
    def add_without_upsert(self, first: str, extra: list[DocTuple], data: st.DataObject) -> Any:
        docs = [data.draw(doc_tuples(st.just(first))), *(d for d in extra if d[0] != first)]
        return multiple(*self._add(docs, self.no_upsert))

    @rule(first=ids, more=st.lists(ids, max_size=2), unknown=st.lists(doc_ids(), max_size=1))
    def delete(self, first: str, more: list[str], unknown: list[str]) -> None:
        chosen = _unique([first, *more, *unknown])
        deleted = call(self.session.delete_docs(chosen))
        expected = self.model.delete(chosen)
        assert deleted == expected, f"delete_docs({chosen}) returned {deleted}, expected {expected}"

    @rule(first=ids, more=st.lists(ids, max_size=2), unknown=st.lists(doc_ids(), max_size=1))
    def get(self, first: str, more: list[str], unknown: list[str]) -> None:
        chosen = _unique([first, *more, *unknown])
        options = self.target.get_documents_options(doc_ids=chosen)
        got = {d.id: d for d in call(self.session.get_docs(options))}
        want = {d.id: d for d in self.model.get(chosen)}
        assert sorted(got) == sorted(want), (
            f"get_docs({chosen}) gave {sorted(got)}, expected {sorted(want)}"
        )
        for doc_id, doc in want.items():
            assert got[doc_id].text == doc.text, f"text of {doc_id!r}"
            assert _metadata(got[doc_id].metadata) == _metadata(doc.metadata), (
                f"metadata of {doc_id!r}"
            )

    @rule(
        vector=custom_vectors(DIM, unit=True),
        top_k=st.none() | st.integers(1, 8),
        flt=st.none() | filters(),
    )
    def query(self, vector: list[float], top_k: int | None, flt: dict[str, Any] | None) -> None:
        options = self.target.query_options(embedding=vector, top_k=top_k, alpha=1.0, filter=flt)
        got = hits(call(self.session.query("", options)))
        scores = self.model.scores(vector, flt)
        problems = query_problems(scores, 5 if top_k is None else top_k, got)
        assert not problems, (
            f"query(top_k={top_k}, filter={flt}): " + "; ".join(problems)
            + f" | model scores: { {k: round(v, 6) for k, v in scores.items()} }"
        )

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def push(self) -> None:
        call(self.session.push_index())
        self.model.push()
        stored = self.cloud.index(self.project, self.name)
        assert stored is not None, "push_index() left no cloud index"
        want = self.model.cloud_checksums() or {}
        assert sorted(stored.doc_ids) == sorted(want), (
            f"cloud holds {sorted(stored.doc_ids)}, the session held {sorted(want)}"
        )
        changed = sorted(i for i in want if stored.checksums.get(i) != want[i])
        assert not changed, f"the cloud stores other vectors than the session for {changed}"
        assert (stored.model_id, stored.dimension) == (CUSTOM, DIM)

    @precondition(lambda self: self.steps_since_open >= RESUME_EVERY)
    @rule(omit_model_id=st.booleans())
    def resume(self, omit_model_id: bool) -> None:
        # Omitting model_id adopts a stored model; with no cloud copy it would pick the
        # default built-in model, which custom vectors cannot use.
        model_id = None if omit_model_id and self.model.cloud is not None else CUSTOM
        # Unpushed changes must not have reached the cloud: the copy resumed is the last push.
        stored = self.cloud.index(self.project, self.name)
        want = self.model.cloud_checksums()
        held = None if stored is None else stored.checksums
        assert held == want, f"before resuming, the cloud holds {held}, the last push sent {want}"
        self.session = self._open(model_id)
        self.model.resume()
        self.steps_since_open = -1  # the invariant below counts this step

    # --- after every step ---------------------------------------------------------------------
    @invariant()
    def same_documents(self) -> None:
        self.steps_since_open += 1
        assert self.session.doc_count == len(self.model), (
            f"doc_count {self.session.doc_count}, expected {len(self.model)}"
        )
        got = {d.id: d for d in call(self.session.get_docs())}
        assert sorted(got) == sorted(self.model.docs), (
            f"get_docs() ids {sorted(got)}, expected {sorted(self.model.docs)}"
        )
        for doc_id, doc in self.model.docs.items():
            assert got[doc_id].text == doc.text, f"text of {doc_id!r}"
            assert _metadata(got[doc_id].metadata) == _metadata(doc.metadata), (
                f"metadata of {doc_id!r}: {got[doc_id].metadata!r}, expected {doc.metadata!r}"
            )


@pytest.mark.clause("P-STATE-MATCHES-MODEL")
def test_session_behaves_like_model(target, cloud, project, pytestconfig):
    """Random sequences of add (upsert, and ``upsert=False`` where the target can say so),
    delete, get, query (with and without generated filters), push and resume (a new client)
    behave as the model: the same counts, documents and top-k results (ties as sets, scores
    within 1e-4), and after each push the cloud holds the session's ids and vectors.

    Troubleshooting: the message names the step that disagreed; the test output holds the
    shortest program Hypothesis found. Replay it on the target by hand.
    """
    run_state_machine_as_test(
        lambda: SessionMachine(target, cloud, project),
        settings=suite_settings(pytestconfig),
    )
