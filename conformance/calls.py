"""``call(value)``: lets one suite test drive sync and async SDKs alike.

Suite tests write ``session = call(client.session(name, model_id="custom"))``: a plain value
passes through, an awaitable is awaited. Every await runs on one event loop kept for the whole
pytest session, because async SDK clients bind to the loop they were first used on; the plugin
closes it when the session ends.
"""

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_runner: asyncio.Runner | None = None


async def _await(awaitable: Awaitable[T]) -> T:
    # asyncio.Runner.run takes coroutines only; SDK futures (e.g. from native code) are wrapped.
    return await awaitable


def call(value: Awaitable[T] | T) -> T:
    """``value`` itself, or its result when it is awaitable."""
    if not inspect.isawaitable(value):
        return value  # type: ignore[return-value]
    global _runner
    if _runner is None:
        _runner = asyncio.Runner()
    return _runner.run(_await(value))


def close_loop() -> None:
    """Close the shared loop (a later ``call`` opens a new one)."""
    global _runner
    runner, _runner = _runner, None
    if runner is not None:
        runner.close()


def close_resource(obj: Any) -> None:
    """Call ``obj.aclose()`` or ``obj.close()`` if it has one, awaiting the result."""
    for name in ("aclose", "close"):
        method = getattr(obj, name, None)
        if callable(method):
            call(method())
            return
