"""Every error leaves the mock cloud as JSON ``{"error": "..."}`` naming what was wrong."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from mock_cloud.signing import InvalidSignature
from mock_cloud.store import NotFound

log = logging.getLogger("mock_cloud")


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   ) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "docs", 0, "embedding")`` -> ``docs[0].embedding``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def describe(errors: Sequence[Any], prefix: str = "") -> str:
    """One line naming each failing field, as pydantic reports them."""
    lines = []
    for err in errors[:5]:
        path = field_path(err.get("loc", ()))
        if prefix:
            path = prefix if path == "body" else f"{prefix}.{path}"
        lines.append(f"{path}: {err.get('msg', 'invalid')}")
    if len(errors) > 5:
        lines.append(f"... and {len(errors) - 5} more")
    return "; ".join(lines)


def install(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = str(exc.detail)
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            # Starlette's own routing misses: say which call was not understood.
            message = f"{message.lower()}: {request.method} {request.url.path}"
        return error_response(exc.status_code, message, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return error_response(400, describe(exc.errors()))

    async def value_error(_: Request, exc: Exception) -> JSONResponse:
        return error_response(400, str(exc))

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc.args[0]) if exc.args else "not found")

    async def bad_signature(_: Request, exc: Exception) -> JSONResponse:
        return error_response(403, str(exc))

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(InvalidSignature, bad_signature)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(ValueError, value_error)
    app.add_exception_handler(Exception, crash)
