"""When a worker may take a file: the claim rule every Ledger applies inside its own lock."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.model import DONE, RUNNING, LedgerEntry


def utc_now() -> str:
    """Now, as every record stores time: UTC ISO 8601 with milliseconds and Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_claim(
    old: LedgerEntry | None, path: str, etag: str, now: str, lease_until: str, force: bool
) -> LedgerEntry | None:
    """The running entry a claim writes over `old`, or None when the claim must lose: the file
    is done at this ETag (unless forced) or another worker's lease still holds it."""
    if old is not None and old.status == DONE and not force:
        return None
    if old is not None and old.status == RUNNING and (old.not_before or "") > now:
        return None
    attempts = old.attempts + 1 if old else 1
    return LedgerEntry(path, etag, RUNNING, attempts, started_at=now, not_before=lease_until)
