"""The reconciler: process every file the ledger has not done, within a time budget."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from shared.core.audiences.touched import FileUpkeep
from shared.core.cdm.catalog import Catalog, is_metadata
from shared.core.config import Config
from shared.core.errors import StorageFull, TransientError
from shared.core.ingest.service import IngestOptions, Ports, ingest_file, is_due, iso
from shared.core.model import DONE, FAILED, QUARANTINED, SKIPPED, IngestReport, SourceFile

log = logging.getLogger(__name__)
# Consecutive files that could not even be opened before a pass gives up: storage is down.
MAX_UNREADABLE = 3


@dataclasses.dataclass
class ReconcileReport:
    listed: int = 0
    processed: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    quarantined: int = 0
    relinked: int = 0
    # Files due but not reached before the time budget ran out.
    remaining: int = 0
    reports: list[IngestReport] = dataclasses.field(default_factory=list)

    def to_record(self) -> dict[str, int]:
        record = dataclasses.asdict(self)
        del record["reports"]
        return record


def reconcile(
    ports: Ports,
    config: Config,
    options: IngestOptions | None = None,
    *,
    prefix: str = "",
    budget_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    retry_failed: bool = False,
) -> ReconcileReport:
    """Process what the ledger has not done at each file's current ETag; re-link unmatched.

    With `retry_failed`, files that failed (whatever the reason) or were quarantined at their
    current ETag are processed now too, back-off and quarantine notwithstanding: after a fix.
    """
    options = options or IngestOptions()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    files = sorted(ports.source.list(prefix), key=lambda f: (not is_metadata(f.path), f.path))
    report = ReconcileReport(listed=len(files))
    catalog = Catalog(ports.source, options.root, cache=True, metadata=options.metadata)
    due, retried = _due(ports, files, iso(options.clock()), retry_failed, config)
    unreadable, halted = 0, False
    for index, file in enumerate(due):
        if deadline is not None and time.monotonic() >= deadline:  # a budget of 0 starts nothing
            report.remaining = len(due) - index
            log.warning("reconcile stopped at its time budget with %d files left", report.remaining)
            break
        # Metadata first: a new manifest changes how the data files after it are read.
        use = None if is_metadata(file.path) else catalog
        try:
            force = file.path in retried
            outcome = ingest_file(ports, config, file.path, options, catalog=use, force=force)
            unreadable = 0
        except StorageFull as exc:  # not even a claim fits: stop, as the outcome's halt does
            outcome = IngestReport(file.path, None, FAILED, error=str(exc), retryable=True,
                                   halt=str(exc))  # fmt: skip
        except TransientError as exc:
            outcome = IngestReport(file.path, None, FAILED, error=str(exc), retryable=True)
            unreadable += 1
        _tally(report, outcome)
        if unreadable >= MAX_UNREADABLE or outcome.halt:
            report.remaining = len(due) - index - 1
            why = outcome.halt or f"storage unavailable ({outcome.error})"
            log.warning("reconcile stopped with %d files left: %s", report.remaining, why)
            halted = outcome.halt is not None
            break
        if progress is not None:
            progress(index + 1, len(due))
    # A full store takes no links either; the next pass makes them.
    report.relinked = 0 if halted else ports.store.relink()
    if ports.upkeep is not None and not halted:
        _catch_up(ports.upkeep, deadline)
    log.info("reconcile %s", report.to_record())
    return report


def _catch_up(upkeep: FileUpkeep, deadline: float | None) -> None:
    """Measures and segments after the files: everyone again if the definitions changed or a
    worker died inside a file, then the customers whose windows moved on. A fault here fails
    no file: what is left is still due on the next pass."""
    try:
        refreshed, due = upkeep.catch_up(deadline)
    except Exception as exc:
        log.warning("audiences not caught up, left to the next pass: %s", exc)
        return
    if refreshed or due:
        log.info("audiences: %d customers evaluated for new definitions or after a worker died, "
                 "%d whose windows moved", refreshed, due)  # fmt: skip


def _due(
    ports: Ports, files: list[SourceFile], now: str, retry_failed: bool, config: Config
) -> tuple[list[SourceFile], set[str]]:
    """The files to process, and those of them to retry after a failure despite the ledger."""
    due, retried = [], set()
    for file in files:
        entry = ports.ledger.get(file.path, file.etag)
        if retry_failed and entry is not None and entry.status in (FAILED, QUARANTINED):
            retried.add(file.path)
        if file.path in retried or is_due(entry, now, config):
            due.append(file)
    return due, retried


def _tally(report: ReconcileReport, outcome: IngestReport) -> None:
    report.processed += 1
    report.reports.append(outcome)
    if outcome.status == DONE:
        report.done += 1
    elif outcome.status == SKIPPED:
        report.skipped += 1
    elif outcome.status == FAILED:
        report.failed += 1
    elif outcome.status == QUARANTINED:
        report.quarantined += 1
