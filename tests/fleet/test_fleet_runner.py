import asyncio

import uvloop

from drakewell.fleet.runner import run


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop_by_default_and_asyncio_on_request() -> None:
    assert run(_loop_type()) is uvloop.Loop
    assert run(_loop_type(), use_uvloop=False) is not uvloop.Loop


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    assert run(asyncio.sleep(0, result=7)) == 7
    try:
        run(fail())
    except ValueError as exc:
        assert str(exc) == "boom"
    else:
        raise AssertionError("the error did not propagate")
