"""Stopping a process's background loops.

Each loop watches a shared ``asyncio.Event`` and returns once it is set. Cancellation is
only the fallback: redis-py absorbs a cancellation that arrives during a command, so a loop
that is merely cancelled can carry on running and a shutdown that awaits it never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

log = logging.getLogger("agentauth")
GRACE = 5.0  # seconds a loop gets to notice the stop before it is cancelled


async def stop_tasks(tasks: Sequence[asyncio.Task[None]], grace: float = GRACE) -> None:
    """Wait up to ``grace`` seconds for ``tasks`` to end (their stop event is already set),
    then cancel the ones still running and wait for them."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            log.warning("background task %s ignored its stop; cancelling it", task.get_name())
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())
