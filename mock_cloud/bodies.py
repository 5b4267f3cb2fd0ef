"""Request bodies read as raw bytes, and how their schema is still documented in OpenAPI.

The push and upload bodies reach ~1 GB: they are read straight into one buffer and handed to
the fast decoders of ``protocol``, not parsed by FastAPI, while the pydantic models of
``protocol.models`` describe them in the OpenAPI document (so schemathesis can fuzz them).
"""

import mmap
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError

from mock_cloud.errors import describe
from protocol.buffers import FillBuffer


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"body: larger than the limit of {limit} bytes")


Body = bytearray | mmap.mmap
_MAPPED_BYTES = 1 << 20


def declared_length(request: Request, limit: int) -> int:
    """The Content-Length (0 if none), refused with 413 if it exceeds ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return 0
    try:
        size = int(declared)
    except ValueError:
        raise HTTPException(400, "Content-Length: not a number") from None
    if size > limit:
        raise too_large(limit)
    return size


async def stream_body(request: Request, limit: int, feed: Callable[[bytes], None]) -> int:
    """Hand the body to ``feed`` a piece at a time, as it arrives, refused with 413 as soon
    as it is known to exceed ``limit``; its length."""
    declared_length(request, limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        feed(chunk)
    return size


async def read_body(request: Request, limit: int) -> Body:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit``."""
    size = declared_length(request, limit)
    # Preallocated when the length is known: growing a 800 MB buffer copies it repeatedly. A
    # large one is an anonymous map backed as it fills (see FillBuffer): bytearray(size) zeroes
    # it all first, 0.6 s for a 100k push before a byte was read.
    fill = FillBuffer(size) if size >= _MAPPED_BYTES else None
    buf: Body = fill.map if fill is not None else bytearray(size)
    filled = 0
    async for chunk in request.stream():
        end = filled + len(chunk)
        if end > limit:
            raise too_large(limit)
        if end <= len(buf):
            if fill is not None:
                fill.reserve(end)
            buf[filled:end] = chunk  # same length: copied in place, no resize
        else:
            if isinstance(buf, mmap.mmap):  # more than announced: the framing would refuse it
                buf = bytearray(buf[:filled])
            buf[filled:] = chunk
        filled = end
    if filled < len(buf):
        if isinstance(buf, mmap.mmap):
            return bytearray(buf[:filled])
        del buf[filled:]
    return buf


def parse_json(data: bytes | Body) -> Any:
    try:
        if isinstance(data, mmap.mmap):
            with memoryview(data) as view:
                return orjson.loads(view)
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body: malformed JSON ({exc})") from None


def validate(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """``model`` validated strictly (no string-to-number coercion); errors name the field."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ValueError(describe(exc.errors(), prefix=where)) from None


Model = TypeVar("Model", bound=BaseModel)


def strict_json(model: type[Model]) -> Callable[[Request], Awaitable[Model]]:
    """A dependency reading a small JSON body as ``model``, strictly: FastAPI's own body
    parsing would coerce ``"2"`` to ``2``, and a mistyped field must be refused.
    Document the body with ``openapi_extra=json_body(model)``."""

    async def body(request: Request) -> Model:
        limit: int = request.app.state.cloud.settings.max_body_bytes
        parsed: Model = validate(model, parse_json(await read_body(request, limit)))
        return parsed

    return body


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a raw-read JSON body with ``model``'s schema."""
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": inlined}}}}


def binary_body(description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
