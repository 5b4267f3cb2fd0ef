"""Pydantic models of every request and reply in PROTOCOL.md.

Field names are the wire names (camelCase for most bodies, snake_case for IndexInfo and job
status, as the published SDK expects them). Unknown fields are ignored on input so newer
clients keep working; required fields are required.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.names import validate_index_name

JobState = Literal["pending_upload", "uploading", "building", "completed", "failed"]
MetadataValue = str | int | float | bool
Metadata = dict[str, MetadataValue]


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _name(value: str) -> str:
    return validate_index_name(value)


# --- auth -----------------------------------------------------------------------------------
class TokenRequest(Wire):
    projectId: str = Field(min_length=1)
    projectKey: str = Field(min_length=1)


class TokenReply(Wire):
    token: str
    expiresIn: int


# --- indexes --------------------------------------------------------------------------------
class IndexInfo(Wire):
    name: str
    document_count: int
    model_id: str
    id: str | None = None
    version: str | None = None
    model_version: str | None = None
    dimension: int | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class UrlReply(Wire):
    indexUrl: str
    dataUrl: str


class DocumentRecord(Wire):
    """A document as ``get_docs`` and the documents file carry it: no embedding."""

    id: str = Field(min_length=1)
    text: str
    metadata: Metadata | None = None
    payload: Any = None


class PushDocument(DocumentRecord):
    embedding: list[float] = Field(min_length=1)


class PushRequest(Wire):
    indexName: str
    modelId: str | None = None
    docs: list[PushDocument]

    _check_name = field_validator("indexName")(_name)


class JobReply(Wire):
    jobId: str
    status: JobState


class InitRequest(Wire):
    indexName: str
    modelId: str = Field(min_length=1)
    docCount: int = Field(ge=0)
    dimension: int = Field(ge=0)

    _check_name = field_validator("indexName")(_name)


class InitReply(Wire):
    jobId: str
    presignedUrl: str


class JobStatus(Wire):
    id: str
    status: JobState
    progress: float
    created_at: str
    current_phase: str | None = None
    error_message: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None


class AddDocsRequest(Wire):
    docs: list[PushDocument | DocumentRecord]
    upsert: bool = True


class DeleteDocsRequest(Wire):
    docIds: list[str]


class TelemetryEvent(Wire):
    model_config = ConfigDict(extra="allow")
    eventType: str | None = None


class ErrorReply(Wire):
    error: str
