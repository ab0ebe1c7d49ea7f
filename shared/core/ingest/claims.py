"""When a worker may take a file, and keep it: the claim and renewal rules every Ledger
applies inside its own lock."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.core.errors import FootprintError
from shared.core.model import DONE, FAILED, RUNNING, LedgerEntry
from shared.core.ports import Ledger


def utc_now() -> str:
    """Now, as every record stores time: UTC ISO 8601 with milliseconds and Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_claim(
    old: LedgerEntry | None,
    path: str,
    etag: str,
    now: str,
    lease_until: str,
    force: bool,
    holder: str | None = None,
) -> LedgerEntry | None:
    """The running entry a claim writes over `old`, or None when the claim must lose: the file
    is done at this ETag (unless forced) or another worker's lease still holds it."""
    if old is not None and old.status == DONE and not force:
        return None
    if old is not None and old.status == RUNNING and (old.not_before or "") > now:
        return None
    attempts = old.attempts + 1 if old else 1
    return LedgerEntry(
        path, etag, RUNNING, attempts, started_at=now, not_before=lease_until, holder=holder
    )


INTERRUPTED = "interrupted"  # the error of a claim let go on Ctrl-C or SIGTERM (let_go)


def died_inside(old: LedgerEntry | None, now: str) -> bool:
    """Whether the worker that last claimed the file stopped inside it: killed (its lease ran
    out while running) or interrupted. Its work on the file may be half done."""
    if old is None:
        return False
    if old.status == RUNNING:
        return (old.not_before or "") <= now
    return old.status == FAILED and old.error == INTERRUPTED


def renewed(old: LedgerEntry | None, claim: LedgerEntry, lease_until: str) -> LedgerEntry | None:
    """The entry a renewal writes over `old`, or None when the claim is no longer the
    renewer's: finished, or taken over by another worker once its lease ran out."""
    if old is None or old.status != RUNNING:
        return None
    if (old.holder, old.started_at) != (claim.holder, claim.started_at):
        return None
    old.not_before = max(old.not_before or "", lease_until)
    return old


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ClaimLost(FootprintError):
    """Another worker took the file over: this one's lease ran out before it was renewed."""


class Lease:
    """A claim kept alive while its holder works on the file: renewed once a third of it has
    passed, so a worker that dies lets the file go within one lease, however long the file."""

    def __init__(
        self, ledger: Ledger, entry: LedgerEntry, seconds: float, clock: Callable[[], datetime]
    ) -> None:
        self.ledger, self.entry, self.clock = ledger, entry, clock
        self.every = timedelta(seconds=seconds / 3)
        self.seconds = timedelta(seconds=seconds)
        self.renewed_at = clock()

    def beat(self) -> None:
        """Renew the lease if it is due; raises ClaimLost when the file is no longer ours."""
        now = self.clock()
        if now - self.renewed_at < self.every:
            return
        until = iso(now + self.seconds)
        if not self.ledger.renew(self.entry, until):
            raise ClaimLost(f"{self.entry.path}: taken over by another worker")
        self.renewed_at, self.entry.not_before = now, until


def this_process() -> str:
    """Who holds a claim: the host and process, as `footprint status` shows."""
    return f"{socket.gethostname()}:{os.getpid()}"


def held_message(entry: LedgerEntry | None) -> str:
    """Why a claim lost, with when the winner's claim runs out."""
    if entry is not None and entry.status == RUNNING:
        who = entry.holder or "another worker"
        return f"being processed by {who}; its claim expires at {entry.not_before} unless renewed"
    return "done or being processed elsewhere"


def let_go(ledger: Ledger, entry: LedgerEntry, now: str, why: str) -> None:
    """Record a claimed file failed and due again at once, the attempt not counted: the
    worker, not the file, stopped it. Best effort: should this fail too, the lease runs out."""
    entry.status, entry.error, entry.permanent = FAILED, why, False
    entry.attempts, entry.not_before = max(entry.attempts - 1, 0), None
    entry.finished_at = now
    with contextlib.suppress(Exception):
        ledger.record(entry)
