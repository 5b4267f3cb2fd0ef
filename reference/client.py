"""The project client: opens sessions and reads cloud indexes."""

import os

from protocol import validate_index_name
from protocol.models import IndexInfo as WireIndexInfo
from reference.errors import IndexNotFoundError, InvalidArgumentError
from reference.filters import compile_filter
from reference.session import SessionIndex
from reference.transport import CloudTransport
from reference.types import (
    DocumentInfo,
    GetDocumentsOptions,
    IndexInfo,
    QueryOptions,
    SearchResult,
)

DEFAULT_AUTH_URL = "http://127.0.0.1:8765/auth/token"
DEFAULT_INDEX_URL = "http://127.0.0.1:8765/index"


def _info(wire: WireIndexInfo) -> IndexInfo:
    return IndexInfo(
        name=wire.name,
        doc_count=wire.document_count,
        model_id=wire.model_id,
        version=wire.version,
        created_at=wire.created_at,
        updated_at=wire.updated_at,
    )


def _name(name: object, field: str = "index_name") -> str:
    try:
        return validate_index_name(name, field)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(str(exc)) from None


class Client:
    """``Client(project_id, project_key)``; the cloud URLs default to ``MOSS_AUTH_URL`` and
    ``MOSS_INDEX_URL``, then to a mock cloud on 127.0.0.1:8765."""

    def __init__(
        self,
        project_id: str,
        project_key: str,
        *,
        auth_url: str | None = None,
        index_url: str | None = None,
    ) -> None:
        for field, value in (("project_id", project_id), ("project_key", project_key)):
            if not isinstance(value, str) or not value:
                raise InvalidArgumentError(f"{field}: expected a non-empty string, got {value!r}")
        self.project_id = project_id
        self._transport = CloudTransport(
            project_id,
            project_key,
            auth_url or os.environ.get("MOSS_AUTH_URL") or DEFAULT_AUTH_URL,
            index_url or os.environ.get("MOSS_INDEX_URL") or DEFAULT_INDEX_URL,
        )
        self._loaded: dict[str, SessionIndex] = {}

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, index_name: str, model_id: str | None = None) -> SessionIndex:
        """Open a session: resume the cloud index ``index_name`` if it exists, else start empty.

        Credentials are checked here (``AuthenticationError``); a ``model_id`` that differs from
        a stored index's model raises ``ModelMismatchError`` (a ``ValueError``)."""
        name = _name(index_name)
        self._transport.authenticate()
        return SessionIndex.open(self._transport, name, model_id)

    def load_index(self, name: str) -> str:
        """Download a cloud index for local queries (long-term context); returns its name."""
        name = _name(name, "name")
        self._loaded[name] = SessionIndex.load(self._transport, name)
        return name

    def query(self, name: str, query: str, options: QueryOptions | None = None) -> SearchResult:
        """Query a cloud index locally, loading it first if needed."""
        if name not in self._loaded:
            self.load_index(name)
        return self._loaded[name].query(query, options)

    def get_index(self, name: str) -> IndexInfo:
        info = self._transport.index_info(_name(name, "name"))
        if info is None:
            raise IndexNotFoundError(f"index {name!r} does not exist", 404)
        return _info(info)

    def list_indexes(self) -> list[IndexInfo]:
        return [_info(w) for w in self._transport.list_indexes()]

    def delete_index(self, name: str) -> bool:
        self._loaded.pop(name, None)
        return self._transport.delete_index(_name(name, "name"))

    def get_docs(self, name: str, options: GetDocumentsOptions | None = None) -> list[DocumentInfo]:
        """Documents of a cloud index, without embeddings; ``options.filter`` applies locally."""
        options = options or GetDocumentsOptions()
        stored = self._transport.get_docs(_name(name, "name"), options.doc_ids)
        if options.doc_ids is not None:  # the order asked, as SessionIndex.get_docs gives it
            by_id = {d.id: d for d in stored}
            stored = [by_id[i] for i in options.doc_ids if i in by_id]
        docs = [DocumentInfo(d.id, d.text, d.metadata, None, d.payload) for d in stored]
        if options.filter is None:
            return docs
        keep = compile_filter(options.filter)
        return [d for d in docs if keep(d.metadata)]
