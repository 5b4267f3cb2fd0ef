"""``call``: plain values pass through; awaitables run on one loop kept across calls."""

import asyncio

import pytest

from conformance import calls
from conformance.calls import call, close_loop, close_resource


@pytest.fixture(autouse=True)
def fresh_loop():
    close_loop()
    yield
    close_loop()


async def current_loop():
    return asyncio.get_running_loop()


class FutureLike:
    """An awaitable that is not a coroutine, like the futures native SDKs return."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        yield from asyncio.sleep(0).__await__()
        return self.value


def test_plain_values_pass_through():
    assert call(3) == 3
    assert call(None) is None
    assert calls._runner is None, "no loop is needed for plain values"


def test_coroutines_and_awaitables_are_awaited():
    async def double(x):
        return 2 * x

    assert call(double(21)) == 42
    assert call(FutureLike("ok")) == "ok"


def test_one_loop_for_every_call():
    first = call(current_loop())
    assert call(current_loop()) is first
    close_loop()
    assert call(current_loop()) is not first


def test_close_resource_prefers_aclose():
    closed = []

    class AsyncThing:
        async def aclose(self):
            closed.append("aclose")

        def close(self):
            closed.append("close")

    class SyncThing:
        def close(self):
            closed.append("sync")

    close_resource(AsyncThing())
    close_resource(SyncThing())
    close_resource(object())
    assert closed == ["aclose", "sync"]
