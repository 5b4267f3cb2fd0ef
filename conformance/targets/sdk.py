""":class:`SdkTarget`: a target assembled from an SDK's client factory and data classes."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


def _given(**values: Any) -> dict[str, Any]:
    # Arguments the test left out are not passed at all, so the SDK's own defaults apply.
    return {k: v for k, v in values.items() if v is not None}


@dataclass
class SdkTarget:
    """Most SDKs need nothing more: name the client factory and the three option classes.

    ``make_client`` is called with ``project_id, project_key, auth_url, index_url`` as keywords.
    """

    name: str
    capabilities: frozenset[str]
    make_client: Callable[..., Any]
    document_type: Callable[..., Any]
    query_options_type: Callable[..., Any]
    get_documents_options_type: Callable[..., Any]
    version_info: Mapping[str, str] = field(default_factory=dict)
    on_close: Callable[[], None] | None = None
    threaded_cloud_ok: bool = False
    # Optional: the SDK's MutationOptions class, when its add_docs takes one.
    mutation_options_type: Callable[..., Any] | None = None

    def client(self, *, project_id: str, project_key: str, auth_url: str, index_url: str) -> Any:
        return self.make_client(
            project_id=project_id, project_key=project_key, auth_url=auth_url, index_url=index_url
        )

    def document(
        self,
        id: str,
        text: str,
        metadata: Mapping[str, Any] | None = None,
        embedding: Sequence[float] | None = None,
    ) -> Any:
        return self.document_type(
            id, text, **_given(metadata=None if metadata is None else dict(metadata),
                               embedding=None if embedding is None else list(embedding))
        )

    def query_options(
        self,
        *,
        embedding: Sequence[float] | None = None,
        top_k: int | None = None,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Any:
        return self.query_options_type(
            **_given(
                embedding=None if embedding is None else list(embedding),
                top_k=top_k,
                alpha=alpha,
                filter=None if filter is None else dict(filter),
            )
        )

    def get_documents_options(self, *, doc_ids: Sequence[str] | None = None) -> Any:
        return self.get_documents_options_type(
            **_given(doc_ids=None if doc_ids is None else list(doc_ids))
        )

    def mutation_options(self, *, upsert: bool | None = None) -> Any:
        """The SDK's ``MutationOptions`` (the second argument of ``add_docs``)."""
        if self.mutation_options_type is None:
            raise NotImplementedError(f"target {self.name!r} names no MutationOptions class")
        return self.mutation_options_type(**_given(upsert=upsert))

    def versions(self) -> dict[str, str]:
        return dict(self.version_info)

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


def distribution_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
