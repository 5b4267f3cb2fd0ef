"""The ASGI middleware in front of every route: body-size limit, injected faults and the
request log (with one log line per request for ``sessionspec serve``)."""

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_cloud.bodies import too_large
from mock_cloud.errors import error_response

if TYPE_CHECKING:
    from mock_cloud.cloud import MockCloud

CONTROL_PREFIX = "/_mock"
request_log = logging.getLogger("mock_cloud.requests")


class RouteTable:
    """Route templates by method, read from the app's OpenAPI document.

    Faults match on the template before the request is routed, and FastAPI's router keeps
    its routes in version-specific structures, so the table is built from the public schema.
    """

    def __init__(self, openapi: dict[str, Any]) -> None:
        self._routes: list[tuple[re.Pattern[str], set[str], str]] = []
        for template, operations in openapi.get("paths", {}).items():
            parts = re.split(r"(\{[^}]+\})", template)
            pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            methods = {m.upper() for m in operations}
            self._routes.append((re.compile(pattern + "$"), methods, template))

    def match(self, method: str, path: str) -> str | None:
        partial = None
        for pattern, methods, template in self._routes:
            if pattern.match(path):
                if method in methods:
                    return template
                partial = partial or template
        return partial


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class CloudMiddleware:
    def __init__(self, app: ASGIApp, cloud: "MockCloud") -> None:
        self.app = app
        self.cloud = cloud
        self._table: RouteTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        method: str = scope["method"]
        path: str = scope["path"]
        if self._table is None:
            self._table = RouteTable(scope["app"].openapi())
        route = self._table.match(method, path)
        control = path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")
        limit = self.cloud.settings.max_body_bytes
        state = scope.setdefault("state", {})
        status = 500
        received = sent = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        recorded = False

        def record() -> None:
            nonlocal recorded, route
            if recorded or control:
                return
            recorded = True
            matched = getattr(scope.get("route"), "path", None)
            route = matched if isinstance(matched, str) else route
            project = state.get("project") or _header(scope, b"x-project-id")
            entry = self.cloud.log.record(
                started=started, method=method, route=route or path, path=path,
                project=project, status=status, body_bytes=received, response_bytes=sent)
            request_log.info("%s %s -> %d project=%s body=%dB %.1fms", method, path,
                             status, project or "-", received, entry.duration_ms)

        length: int | None = None

        async def status_send(message: Message) -> None:
            nonlocal status, sent, length
            if message["type"] == "http.response.start":
                status = message["status"]
                declared = dict(message.get("headers", ())).get(b"content-length")
                length = int(declared) if declared and declared.isdigit() else None
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False) or (length is not None and sent >= length):
                    # Logged before the last bytes leave: a client holding a whole response
                    # always finds its request in the log. A streamed download would otherwise
                    # be logged after its client, which stops at Content-Length, moved on.
                    record()
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await error_response(413, too_large(limit).detail)(scope, receive, status_send)
                return
            fault = None if control else self.cloud.faults.take(method, route, path)
            if fault is not None:
                if fault.delay_s > 0:
                    await asyncio.sleep(fault.delay_s)
                if fault.status is not None:
                    message = f"injected fault: {method} {route or path} -> {fault.status}"
                    await error_response(fault.status, message)(scope, receive, status_send)
                    return
            await self.app(scope, counting_receive, status_send)
        finally:
            record()  # a request that ended without a full response (error, disconnect)
