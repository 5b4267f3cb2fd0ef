"""The reference SDK: a minimal, correct implementation of the SessionIndex document.

``Client(project_id, project_key).session(index_name)`` returns a :class:`SessionIndex` that
adds, deletes, gets and queries documents in memory with local embeddings, and pushes documents
with their vectors to the cloud.
"""

from reference.client import Client
from reference.errors import (
    AuthenticationError,
    CloudError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelMismatchError,
)
from reference.session import SessionIndex
from reference.types import (
    DocumentInfo,
    GetDocumentsOptions,
    IndexInfo,
    MutationOptions,
    PushIndexResult,
    QueryOptions,
    QueryResultDocumentInfo,
    SearchResult,
)

__all__ = [
    "AuthenticationError",
    "Client",
    "CloudError",
    "DocumentInfo",
    "GetDocumentsOptions",
    "IndexInfo",
    "IndexNotFoundError",
    "InvalidArgumentError",
    "ModelMismatchError",
    "MutationOptions",
    "PushIndexResult",
    "QueryOptions",
    "QueryResultDocumentInfo",
    "SearchResult",
    "SessionIndex",
]
