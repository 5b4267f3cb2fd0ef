"""A gallery of deliberately broken targets: the reference SDK with one rule broken each.

The suite's self-test (``test_gallery.py``) runs each one with ``sessionspec run --target
tests.conformance.gallery:NAME --clause ID`` and expects that clause to FAIL, while the
unbroken reference passes it. Each breakage is a small subclass of the reference client or
session; the class docstring names the clause it breaks. Reaching into reference internals
(``_corpus``, ``_transport``, ``_fill``) is deliberate: it keeps each breakage a few lines long.
"""

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from conformance.targets import SdkTarget
from conformance.targets.reference import reference_target
from reference import (
    AuthenticationError,
    Client,
    DocumentInfo,
    PushIndexResult,
    QueryOptions,
    SearchResult,
    SessionIndex,
)
from reference.client import _name as checked_index_name
from reference.corpus import Corpus
from reference.filters import MetadataColumns
from reference.session import CUSTOM, DEFAULT_MODEL
from reference.transport import CloudTransport


# --- plumbing: the reference target with the client and session classes swapped -------------
class GalleryClient(Client):
    """``reference.Client`` whose ``session()`` builds ``session_type`` sessions."""

    session_type: ClassVar[type[SessionIndex]] = SessionIndex

    def session(self, index_name: str, model_id: str | None = None) -> SessionIndex:
        # reference.Client.session with the session class swapped: keep in step with it.
        name = checked_index_name(index_name)
        self._transport.authenticate()
        return self.session_type.open(self._transport, name, model_id)


@dataclass
class BrokenTarget(SdkTarget):
    """The reference target with one clause broken; ``breaks`` names it."""

    breaks: str = ""


def broken(
    cls: type[SessionIndex] | type[GalleryClient],
    breaks: str,
    *,
    query_options_type: type[QueryOptions] = QueryOptions,
) -> BrokenTarget:
    """A target whose clients are ``cls`` (a client class) or make ``cls`` sessions."""
    if breaks not in (cls.__doc__ or ""):
        raise ValueError(f"{cls.__name__}: the docstring must name the clause it breaks")
    if issubclass(cls, GalleryClient):
        client_type = cls
    else:
        client_type = type(f"{cls.__name__}Client", (GalleryClient,), {"session_type": cls})

    def make_client(*, project_id: str, project_key: str, auth_url: str, index_url: str) -> Any:
        return client_type(project_id, project_key, auth_url=auth_url, index_url=index_url)

    # Everything else as the reference target has it, including fields added to it later.
    reference = reference_target()
    same = {f.name: getattr(reference, f.name) for f in dataclasses.fields(reference)}
    # "ReembedsOnResume" -> "reembeds-on-resume"
    name = "".join(f"-{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("-")
    changed = {
        "name": name,
        "make_client": make_client,
        "query_options_type": query_options_type,
        "version_info": {"breaks": breaks},  # the report's title then says what is broken
    }
    return BrokenTarget(**(same | changed), breaks=breaks)


# --- the breakages ---------------------------------------------------------------------------
def text_vector(text: str, dimension: int) -> np.ndarray:
    """A unit vector derived from ``text`` alone: what a re-embedding SDK would compute."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


class ReembedsOnResume(SessionIndex):
    """Breaks RESUME-NO-REEMBED: a resumed session replaces the stored vectors with vectors
    computed from the texts."""

    def _fill(self, transport: CloudTransport, name: str, info: Any) -> None:
        super()._fill(transport, name, info)
        docs, vectors = self._corpus.snapshot()
        if docs:
            recomputed = np.stack([text_vector(d.text, vectors.shape[1]) for d in docs])
            self._corpus.replace_all(docs, recomputed)


class PushAppends(SessionIndex):
    """Breaks PUSH-REPLACES: push merges the session into the cloud copy, so documents the
    session deleted come back."""

    def push_index(self) -> PushIndexResult:
        transport = self._transport
        info = transport.index_info(self._name) if transport is not None else None
        if transport is not None and info is not None:
            stored = transport.download(self._name, info)
            gone = [i for i, d in enumerate(stored.documents) if d.id not in self._corpus]
            if gone:
                self._corpus.upsert(
                    [stored.documents[i] for i in gone], stored.artifact.embeddings[gone]
                )
        return super().push_index()


class AcceptsModelMismatch(SessionIndex):
    """Breaks MODEL-MISMATCH-VALUEERROR: a ``model_id`` that differs from the stored index's is
    ignored and the stored model adopted, instead of raising ``ValueError``."""

    @classmethod
    def open(cls, transport: CloudTransport, name: str, model_id: str | None) -> SessionIndex:
        if model_id is not None and transport.index_info(name) is not None:
            model_id = None
        return super().open(transport, name, model_id)


class ChecksCredentialsLazily(GalleryClient):
    """Breaks CREDENTIALS-CHECKED-AT-OPEN: rejected credentials at ``session()`` give an empty
    session; only the first ``push_index()`` raises."""

    def session(self, index_name: str, model_id: str | None = None) -> SessionIndex:
        try:
            return super().session(index_name, model_id)
        except AuthenticationError:
            return self.session_type(self._transport, index_name, model_id or DEFAULT_MODEL)


class NeverResumes(SessionIndex):
    """Breaks RESUME-AUTOLOADS: ``session()`` always starts empty, even when the cloud index
    exists."""

    @classmethod
    def open(cls, transport: CloudTransport, name: str, model_id: str | None) -> SessionIndex:
        return cls(transport, name, model_id or DEFAULT_MODEL)


class CallsCloudOnAdd(SessionIndex):
    """Breaks MUTATIONS-IN-MEMORY: every ``add_docs`` fetches the index info from the cloud."""

    def add_docs(self, docs: Sequence[DocumentInfo], options: Any = None) -> tuple[int, int]:
        if self._transport is not None:
            self._transport.index_info(self._name)
        return super().add_docs(docs, options)


# The width a custom session with no vector yet falls back to: MiniLM's, as good as any.
FALLBACK_DIMENSION = 384


class CustomDocWithoutEmbedding(SessionIndex):
    """Breaks CUSTOM-DOC-NEEDS-EMBEDDING: on a custom session a document without an embedding
    is stored with a zero vector instead of being rejected."""

    def add_docs(self, docs: Sequence[DocumentInfo], options: Any = None) -> tuple[int, int]:
        if self.model_id == CUSTOM:
            docs = list(docs)
            given = (len(d.embedding) for d in docs if d.embedding is not None)
            dimension = self.dimension or next(given, FALLBACK_DIMENSION)
            zero = [0.0] * dimension
            docs = [
                d if d.embedding is not None else dataclasses.replace(d, embedding=zero)
                for d in docs
            ]
        return super().add_docs(docs, options)


class CustomQueryWithoutEmbedding(SessionIndex):
    """Breaks CUSTOM-QUERY-NEEDS-EMBEDDING: a custom session's query without an embedding is
    answered by keyword score alone instead of raising."""

    def _query_vector(self, query: str, options: QueryOptions) -> np.ndarray | None:
        if self.model_id == CUSTOM and options.embedding is None:
            return None
        return super()._query_vector(query, options)


@dataclass
class TopKTenQueryOptions(QueryOptions):
    """``QueryOptions`` whose ``top_k`` defaults to 10: the half of DefaultTopKTen that a query
    with options but no ``top_k`` meets."""

    top_k: int = 10


class DefaultTopKTen(SessionIndex):
    """Breaks P-QUERY-TOP-K: ``top_k`` defaults to 10, not 5 (with ``TopKTenQueryOptions`` as
    the target's ``QueryOptions``)."""

    def query(self, query: str, options: QueryOptions | None = None) -> SearchResult:
        return super().query(query, options or TopKTenQueryOptions())


MISSING = "\x00missing"  # what a missing field reads as: equal to no value a filter names


def ne_fields(node: object) -> set[str]:
    """The fields of the ``$ne`` leaves of a filter."""
    if not isinstance(node, Mapping):
        return set()
    condition = node.get("condition")
    if isinstance(condition, Mapping) and "$ne" in condition and isinstance(node.get("field"), str):
        return {node["field"]}
    parts = [p for key in ("$and", "$or") if isinstance(node.get(key), list) for p in node[key]]
    return set().union(*(ne_fields(p) for p in parts))


class NeMatchesMissingCorpus(Corpus):
    def search(
        self,
        vector: np.ndarray | None,
        text: str,
        *,
        top_k: int,
        alpha: float,
        filter: Mapping[str, object] | None,
    ) -> list[tuple[Any, float]]:
        fields = ne_fields(filter)
        if fields:
            pad = dict.fromkeys(fields, MISSING)
            self._columns = MetadataColumns([{**pad, **(d.metadata or {})} for d in self._docs])
        try:
            return super().search(vector, text, top_k=top_k, alpha=alpha, filter=filter)
        finally:
            if fields:
                self._columns = None  # the padded columns must not serve the next query


class NeMatchesMissing(SessionIndex):
    """Breaks P-FILTER-SEMANTICS: a missing field reads as a value of its own, so ``$ne``
    matches documents lacking the field."""

    def __init__(self, transport: CloudTransport | None, name: str, model_id: str) -> None:
        super().__init__(transport, name, model_id)
        self._corpus = NeMatchesMissingCorpus()


class DeleteCountsAsked(SessionIndex):
    """Breaks P-DELETE-COUNTS: ``delete_docs`` returns how many ids were asked for, not how
    many were deleted."""

    def delete_docs(self, doc_ids: Iterable[str]) -> int:
        asked = list(doc_ids)
        super().delete_docs(asked)
        return len(asked)


class DefaultModelCustom(SessionIndex):
    """Breaks MODEL-DEFAULT-MINILM: a new session without ``model_id`` uses ``"custom"``, not
    ``"moss-minilm"``."""

    @classmethod
    def open(cls, transport: CloudTransport, name: str, model_id: str | None) -> SessionIndex:
        if model_id is None and transport.index_info(name) is None:
            model_id = CUSTOM
        return super().open(transport, name, model_id)


# --- the targets (``--target tests.conformance.gallery:NAME``) -------------------------------
REEMBEDS_ON_RESUME = broken(ReembedsOnResume, "RESUME-NO-REEMBED")
PUSH_APPENDS = broken(PushAppends, "PUSH-REPLACES")
ACCEPTS_MODEL_MISMATCH = broken(AcceptsModelMismatch, "MODEL-MISMATCH-VALUEERROR")
CHECKS_CREDENTIALS_LAZILY = broken(ChecksCredentialsLazily, "CREDENTIALS-CHECKED-AT-OPEN")
NEVER_RESUMES = broken(NeverResumes, "RESUME-AUTOLOADS")
CALLS_CLOUD_ON_ADD = broken(CallsCloudOnAdd, "MUTATIONS-IN-MEMORY")
CUSTOM_DOC_WITHOUT_EMBEDDING = broken(CustomDocWithoutEmbedding, "CUSTOM-DOC-NEEDS-EMBEDDING")
CUSTOM_QUERY_WITHOUT_EMBEDDING = broken(CustomQueryWithoutEmbedding, "CUSTOM-QUERY-NEEDS-EMBEDDING")
DEFAULT_TOP_K_TEN = broken(DefaultTopKTen, "P-QUERY-TOP-K", query_options_type=TopKTenQueryOptions)
NE_MATCHES_MISSING = broken(NeMatchesMissing, "P-FILTER-SEMANTICS")
DELETE_COUNTS_ASKED = broken(DeleteCountsAsked, "P-DELETE-COUNTS")
DEFAULT_MODEL_CUSTOM = broken(DefaultModelCustom, "MODEL-DEFAULT-MINILM")

GALLERY: dict[str, BrokenTarget] = {
    attr: value for attr, value in globals().items() if isinstance(value, BrokenTarget)
}
"""Every broken target by its attribute name in this module."""
