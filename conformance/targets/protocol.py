"""What an implementation under test must provide: the :class:`Target` protocol."""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from conformance.targets.capabilities import ALL_CAPABILITIES


@runtime_checkable
class Target(Protocol):
    """An SDK under test, as the suite sees it.

    Any call on a client or a session (and the factories here) may return an awaitable: the
    suite awaits it, so async SDKs plug in unchanged. Optional extras, looked up by name:
    ``versions() -> dict[str, str]`` (shown in the report), ``unavailable_reason: str`` (when
    set, every test is skipped with it), ``close()`` (called once when the run ends),
    ``threaded_cloud_ok: bool`` (True when the SDK's blocking calls release the GIL, so the
    mock cloud may serve it from a thread of the test process; otherwise it runs apart) and
    ``mutation_options(*, upsert: bool)`` (the SDK's ``MutationOptions`` for ``add_docs``; tests
    of ``upsert=False`` skip on a target without it, or when it raises NotImplementedError).
    """

    name: str
    capabilities: frozenset[str]

    def client(self, *, project_id: str, project_key: str, auth_url: str, index_url: str) -> Any:
        """A client of the project that talks to the cloud at ``auth_url`` / ``index_url``."""
        ...

    def document(
        self,
        id: str,
        text: str,
        metadata: Mapping[str, Any] | None = None,
        embedding: Sequence[float] | None = None,
    ) -> Any:
        """The SDK's document object (``DocumentInfo``)."""
        ...

    def query_options(
        self,
        *,
        embedding: Sequence[float] | None = None,
        top_k: int | None = None,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Any:
        """The SDK's ``QueryOptions``; arguments left as None must take the SDK's defaults."""
        ...

    def get_documents_options(self, *, doc_ids: Sequence[str] | None = None) -> Any:
        """The SDK's ``GetDocumentsOptions``."""
        ...


def protocol_problems(obj: object) -> list[str]:
    """What keeps ``obj`` from being a usable target (empty when it is one)."""
    problems: list[str] = []
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty string")
    capabilities = getattr(obj, "capabilities", None)
    if not isinstance(capabilities, set | frozenset) or not all(
        isinstance(c, str) for c in capabilities
    ):
        problems.append("'capabilities' must be a frozenset of capability names")
    else:
        unknown = sorted(set(capabilities) - ALL_CAPABILITIES)
        if unknown:
            problems.append(
                f"unknown capabilities {unknown}; known: {sorted(ALL_CAPABILITIES)}"
            )
    for method in ("client", "document", "query_options", "get_documents_options"):
        if not callable(getattr(obj, method, None)):
            problems.append(f"no method {method}()")
    versions = getattr(obj, "versions", None)
    if versions is not None and not callable(versions):
        problems.append("'versions' must be a method returning dict[str, str]")
    return problems


def target_versions(target: object) -> dict[str, str]:
    """The target's ``versions()`` as strings, or ``{}`` when it has none or it fails."""
    versions = getattr(target, "versions", None)
    if not callable(versions):
        return {}
    try:
        return {str(k): str(v) for k, v in dict(versions()).items()}
    except Exception:
        # Versions only decorate the report: a broken versions() must not hide the verdicts.
        return {}


def threaded_cloud_ok(target: object) -> bool:
    return getattr(target, "threaded_cloud_ok", False) is True


def unavailable_reason(target: object) -> str | None:
    reason = getattr(target, "unavailable_reason", None)
    return reason if isinstance(reason, str) and reason else None
