"""Release scheduling: one background pass at a time over the parents (and symbols) marked dirty.

Separate from the loops because it is driven by marks, not by time: an applied observation marks its
parent (or, when an order ended, every plan on its symbol), and this runs release passes until nothing
is marked. One pass at a time keeps releases on a symbol in order: no lock is needed beside it.
"""

from __future__ import annotations

import asyncio

from ordersync.domain.ids import Symbol
from ordersync.engine.context import Context, log
from ordersync.engine.positions import PositionEvidence
from ordersync.engine.release import release
from ordersync.engine.retry import backoff_s
from ordersync.engine.watch import Watch

RETRY_CAP_S = 10.0  # a failed pass is retried at least this often: well inside invariant 9's bound


class ReleaseScheduler:
    """Runs release passes while parents or symbols are marked dirty (``Context.on_dirty`` calls it).

    Its collaborators are explicit: the watch (told which parents a pass looked at) and the positions the
    stream reported (``positions.py``), which the writer fills and each pass reads.
    """

    def __init__(self, ctx: Context, watch: Watch, positions: PositionEvidence) -> None:
        self._ctx = ctx
        self._watch = watch
        self._positions = positions
        self.task: asyncio.Task[None] | None = None

    def idle(self) -> bool:
        """True when no release pass runs or waits."""
        return self.task is None or self.task.done()

    def schedule(self) -> None:
        """Start a release pass unless one runs (it takes the new marks) or the engine is stopping."""
        if self._ctx.stopping:
            return
        if self.idle():
            self.task = asyncio.get_running_loop().create_task(self._loop(), name="release")

    async def _loop(self) -> None:
        failures = 0
        while (self._ctx.dirty or self._ctx.dirty_symbols) and not self._ctx.stopping:
            symbols = {Symbol(s) for s in self._ctx.dirty_symbols}
            batch = set(self._ctx.dirty)
            self._ctx.dirty.clear()
            self._ctx.dirty_symbols.clear()
            self._watch.touched(batch, set(symbols))  # the tick's unprotected check looks at these again
            try:  # a fenced read (the lease lost) is logged like any failed pass, never left unretrieved
                await release(self._ctx, sorted(batch), symbols, self._positions)
                failures = 0
            except Exception as e:
                # the marks go back: nothing else would bring a parent whose fill was just applied back
                # to the gate, and its shares would wait unprotected (invariant 9). Retried with backoff,
                # never in a hot loop (a store refusing writes while the lease is renewed, a bug).
                failures += 1
                self._ctx.dirty |= batch
                self._ctx.dirty_symbols |= symbols
                wait = backoff_s(failures, self._ctx.options.lookup_backoff_base_s, RETRY_CAP_S)
                log.error("engine.release_failed", error=repr(e), retry_in_s=wait)
                await self._ctx.clock.sleep(wait)
