"""The data classes of the documented API."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Metadata = Mapping[str, Any]


@dataclass
class DocumentInfo:
    id: str
    text: str
    metadata: dict[str, Any] | None = None
    embedding: Sequence[float] | None = None
    payload: Any = None


@dataclass
class MutationOptions:
    upsert: bool = True


@dataclass
class GetDocumentsOptions:
    doc_ids: list[str] | None = None
    filter: dict[str, Any] | None = None


@dataclass
class QueryOptions:
    embedding: Sequence[float] | None = None
    top_k: int = 5
    alpha: float = 0.8
    filter: dict[str, Any] | None = None


@dataclass
class QueryResultDocumentInfo:
    id: str
    text: str
    metadata: dict[str, Any] | None
    score: float
    payload: Any = None


@dataclass
class SearchResult:
    docs: list[QueryResultDocumentInfo]
    query: str
    index_name: str | None = None
    time_taken_ms: float | None = None


@dataclass
class PushIndexResult:
    job_id: str
    index_name: str
    doc_count: int
    status: str


@dataclass
class IndexInfo:
    name: str
    doc_count: int
    model_id: str
    version: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
