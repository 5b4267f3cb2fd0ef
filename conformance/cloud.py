"""The mock cloud as the suite sees it: its URLs plus typed helpers over the control API."""

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

CONTROL_HEADER = "X-Control-Key"
AUTH_ROUTE = "/auth/token"
TELEMETRY_ROUTE = "/index/telemetry"


class CloudControlError(RuntimeError):
    """The control API refused a call or could not be reached."""


@dataclass(frozen=True)
class Project:
    """A project in the mock cloud; each test gets its own so no test sees another's data."""

    id: str
    key: str


@dataclass(frozen=True)
class IndexState:
    """One stored index as the control API reports it."""

    name: str
    model_id: str
    dimension: int
    doc_count: int
    doc_ids: list[str]
    checksums: dict[str, str]  # doc id -> sha256 hex of the vector's float32 LE bytes
    updated_at: str | None = None
    version: str | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class LoggedRequest:
    """One entry of the cloud's request log (control-API calls are not logged)."""

    seq: int
    method: str
    route: str  # the route template, e.g. /index/{name}/url
    path: str
    project: str | None
    status: int
    time: float = 0.0  # time.monotonic() in the cloud's process
    body_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_auth(self) -> bool:
        return self.route == AUTH_ROUTE

    @property
    def is_telemetry(self) -> bool:
        return self.route == TELEMETRY_ROUTE


def _logged(entry: dict[str, Any]) -> LoggedRequest:
    known = {"seq", "method", "route", "path", "project", "status", "time", "body_bytes"}
    return LoggedRequest(
        **{k: entry[k] for k in known if k in entry},
        extra={k: v for k, v in entry.items() if k not in known},
    )


def _index(name: str, data: dict[str, Any]) -> IndexState:
    return IndexState(
        name=name,
        model_id=data["model_id"],
        dimension=data["dimension"],
        doc_count=data["doc_count"],
        doc_ids=list(data["doc_ids"]),
        checksums=dict(data["checksums"]),
        updated_at=data.get("updated_at"),
        version=data.get("version"),
        created_at=data.get("created_at"),
    )


class Cloud:
    """A running mock cloud: ``auth_url`` / ``index_url`` for clients, control helpers for tests.

    The helpers read and change the cloud behind the SDK's back, so a test can check what an
    SDK actually stored or sent, and plant data an SDK could not have produced itself.
    """

    def __init__(self, base_url: str, control_key: str | None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_url = self.base_url + AUTH_ROUTE
        self.index_url = self.base_url + "/index"
        self._http = httpx.Client(
            base_url=self.base_url + "/_mock",
            headers={CONTROL_HEADER: control_key} if control_key else {},
            timeout=timeout,
        )
        self._last_seq = 0

    def __repr__(self) -> str:
        return f"Cloud({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CloudControlError(f"control API {method} {path}: {exc}") from exc
        if reply.status_code >= 400:
            hint = " (is --control-key right?)" if reply.status_code == 403 else ""
            raise CloudControlError(
                f"control API {method} {path} -> {reply.status_code}{hint}: {reply.text[:500]}"
            )
        return reply.json()

    # --- projects ---------------------------------------------------------------------------
    def add_project(self, project_id: str | None = None, project_key: str | None = None) -> Project:
        """Create (or re-key) a project; random id and key unless given."""
        project = Project(
            project_id or "proj-" + secrets.token_hex(6),
            project_key or "key-" + secrets.token_urlsafe(18),
        )
        self._call("POST", "/projects", json={"projectId": project.id, "projectKey": project.key})
        return project

    def reset(self) -> None:
        """Drop every index, job, log entry and fault (the control API's ``POST reset``)."""
        self._call("POST", "/reset")

    # --- stored state -----------------------------------------------------------------------
    def state(self, project: str | Project) -> dict[str, IndexState]:
        """The indexes stored in ``project``, by name (empty when it has none)."""
        project_id = project.id if isinstance(project, Project) else project
        data = self._call("GET", "/state")
        indexes = data.get("projects", {}).get(project_id, {}).get("indexes", {})
        return {name: _index(name, info) for name, info in indexes.items()}

    def index(self, project: str | Project, name: str) -> IndexState | None:
        """One stored index, or None when ``project`` has no index ``name``."""
        return self.state(project).get(name)

    def overwrite_vector(
        self, project: str | Project, name: str, doc_id: str, vector: Sequence[float]
    ) -> dict[str, Any]:
        """Replace one stored vector (the cloud bumps ``updated_at``); returns the IndexInfo."""
        project_id = project.id if isinstance(project, Project) else project
        parts = (quote(p, safe="") for p in (project_id, name, doc_id))
        return self._call(
            "PUT",
            "/indexes/{}/{}/vectors/{}".format(*parts),
            json={"embedding": [float(x) for x in vector]},
        )

    # --- request log ------------------------------------------------------------------------
    def requests(
        self, since: int | None = None, *, project: str | Project | None = None
    ) -> list[LoggedRequest]:
        """Logged requests after ``since`` (a :meth:`log_mark`), oldest first.

        With ``project``, only that project's requests and those that named no project (an
        unauthenticated call or a presigned download could come from this test's client)."""
        params = {} if since is None else {"since": since}
        entries = [_logged(e) for e in self._call("GET", "/requests", params=params)]
        if entries:
            self._last_seq = max(self._last_seq, entries[-1].seq)
        if project is None:
            return entries
        project_id = project.id if isinstance(project, Project) else project
        return [e for e in entries if e.project in (project_id, None)]

    def log_mark(self) -> int:
        """The newest log sequence number: pass it to :meth:`requests` as ``since``."""
        self.requests(since=self._last_seq)
        return self._last_seq

    def telemetry(self) -> list[dict[str, Any]]:
        """Telemetry events the SDKs posted, as ``{"project", "event"}``."""
        return self._call("GET", "/telemetry")

    # --- faults -----------------------------------------------------------------------------
    def fault(
        self,
        route: str,
        *,
        method: str | None = None,
        count: int = 1,
        status: int | None = 503,
        delay_s: float = 0.0,
    ) -> None:
        """Fail (or, with ``status=None``, only delay) the next ``count`` calls of ``route``
        (a template such as ``/index/{name}/url`` or a concrete path)."""
        self._call(
            "POST",
            "/faults",
            json={
                "route": route,
                "method": method,
                "count": count,
                "status": status,
                "delay_s": delay_s,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")


@contextmanager
def local_cloud(data_dir: Path, *, in_thread: bool = False) -> Iterator[Cloud]:
    """A mock cloud on a free 127.0.0.1 port with a random control key: on a thread of this
    process (``in_thread``), else in a child process.

    A thread is quicker, but an SDK whose native code blocks on HTTP without releasing the GIL
    (the published ``moss`` does) would wait forever for a server thread in its own process.
    """
    from mock_cloud.server import running_server, running_server_process
    from mock_cloud.settings import Settings

    control_key = secrets.token_urlsafe(24)
    settings = Settings(data_dir=data_dir, projects={}, control_key=control_key)
    start = running_server if in_thread else running_server_process
    with start(settings, host="127.0.0.1", port=0) as server:
        cloud = Cloud(server.base_url, control_key)
        try:
            yield cloud
        finally:
            cloud.close()
