"""Running one account's engine from standby to stop: shared by ``ordersync run`` and the fleet's workers.

Standing by and starting up can each take minutes (a lease held by another instance, a broker answering
429/5xx); a stop request must end either phase at once, not after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start; the engine only when a command runs it
    from ordersync.engine import Engine

__all__ = ["run_engine", "until_stopped"]


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it); True when ``work`` finished."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def run_engine(
    engine: Engine,
    stop: asyncio.Event,
    *,
    on_lease: Callable[[], None] = lambda: None,
    on_active: Callable[[], None] = lambda: None,
) -> None:
    """Wait for the lease, start, sync until ``stop`` or a lost lease; always stop the engine cleanly.

    ``on_lease`` runs once the lease is held, before start-up (``ordersync run`` binds its metrics port
    then, so a standby never holds it); ``on_active`` once start-up is done."""
    if not await until_stopped(engine.wait_for_lease(), stop):
        await engine.stop()
        return
    try:
        on_lease()
    except BaseException:
        await engine.stop()
        raise
    if not await until_stopped(engine.start(), stop):
        await engine.stop()
        return
    on_active()
    await engine.run_until_stopped(stop)
