"""Ctrl-C and SIGTERM held off while a thread or a process starts, so that neither lands
half-way: in `Thread.start` (shared/adapters/azure/table_access.py) or in a forked child
before it has set its own handling (shared/core/forked.py)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def held_off() -> Iterator[set[signal.Signals]]:
    """Within, Ctrl-C and SIGTERM wait for this thread, and arrive once it ends. Yields the
    signal mask from before: a thread or a process started within inherits the blocked one
    and restores this when it is ready for them."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield before
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
