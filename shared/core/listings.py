"""Paged listings of what the ledger and the rejects record hold: files and rejected rows."""

from __future__ import annotations

from typing import Any

from shared.core.errors import BadRequest
from shared.core.model import SKIPPED, STATUSES, LedgerEntry
from shared.core.paging import check_limit, decode_position, encode_position, scope_of
from shared.core.ports import Ledger, ProfileStore
from shared.core.queries import check_id


def rejects(
    store: ProfileStore,
    file: str | None = None,
    limit: int | None = None,
    continuation: str | None = None,
) -> dict[str, Any]:
    """One page of rejected rows in (file, row) order, of one file when given."""
    if file is not None:
        check_id(file, "file")
    limit = check_limit(limit)
    scope = scope_of(file)
    after = decode_position(continuation, "rejects", scope, (str, int)) if continuation else None
    found = store.list_rejects(limit + 1, file, after)  # type: ignore[arg-type]
    page = found[:limit]
    token = None
    if len(found) > limit:
        token = encode_position("rejects", scope, (page[-1].file, page[-1].row))
    return {"rejects": [r.to_record() for r in page], "continuation": token}


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {status[:40]!r}")
    return status


def files(
    ledger: Ledger,
    status: str | None = None,
    limit: int | None = None,
    continuation: str | None = None,
) -> dict[str, Any]:
    """One page of files in path order, each at its latest version (as `status` counts them)."""
    check_status(status)
    limit = check_limit(limit)
    scope = scope_of(status)
    after = decode_position(continuation, "files", scope, (str,))[0] if continuation else None
    found = ledger.latest_entries(status, limit + 1, after)  # type: ignore[arg-type]
    page = found[:limit]
    token = encode_position("files", scope, (page[-1].path,)) if len(found) > limit else None
    return {"files": [file_record(e) for e in page], "continuation": token}


def file_record(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as `files` shows it: why it was skipped apart from what went wrong, and
    when it last changed (a claim starts an entry afresh, an outcome finishes it)."""
    record = entry.to_record()
    skipped = entry.status == SKIPPED
    record["reason"] = entry.error if skipped else None
    record["error"] = None if skipped else entry.error
    record["updated_at"] = entry.finished_at or entry.started_at
    return record
