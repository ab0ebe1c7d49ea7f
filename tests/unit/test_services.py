"""ingest_file and reconcile over the in-memory store, a local folder and a flaky source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.bootstrap import load_config
from shared.core.errors import TransientError
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import DONE, FAILED, QUARANTINED, SKIPPED, SourceFile
from tests.e2e import export

CONFIG = load_config(None)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2021, 9, 28, 14, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FlakySource:
    """A FileSource whose reads fail while `broken` is set, as storage does when it is down."""

    def __init__(self, inner: LocalFileSource) -> None:
        self.inner = inner
        self.broken = False

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[SourceFile]:
        return self.inner.list(prefix, recursive)

    def stat(self, path: str) -> SourceFile:
        return self.inner.stat(path)

    def open(self, path: str) -> tuple[SourceFile, BinaryIO]:
        if self.broken:
            raise TransientError("storage unavailable")
        return self.inner.open(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return export.write_cdm_export(tmp_path / "export")


def ports_for(root: Path) -> Ports:
    return Ports(LocalFileSource(root), MemoryStore(), MemoryLedger())


def test_a_file_is_done_once_per_etag(root: Path) -> None:
    ports = ports_for(root)
    first = ingest_file(ports, CONFIG, export.FIRST_FILE)
    again = ingest_file(ports, CONFIG, export.FIRST_FILE)
    assert first.status == DONE and first.counts.activities == 5
    assert again.status == SKIPPED and "already done" in (again.reason or "")
    assert again.error is None and again.counts.rows == 0  # nothing read this time
    assert ports.ledger.get(export.FIRST_FILE, first.etag).attempts == 1


def test_a_file_that_cannot_be_opened_raises_for_the_runtime_to_retry(root: Path) -> None:
    source = FlakySource(LocalFileSource(root))
    source.broken = True
    # Opening fails before the ETag is known: nothing to record, the caller must retry.
    with pytest.raises(TransientError):
        ingest_file(Ports(source, MemoryStore(), MemoryLedger()), CONFIG, export.FIRST_FILE)


def test_the_reconciler_counts_unreadable_files_and_stops_when_storage_is_down(root: Path) -> None:
    source = FlakySource(LocalFileSource(root))
    source.broken = True
    report = reconcile(Ports(source, MemoryStore(), MemoryLedger()), CONFIG)
    assert report.failed == 3 and report.done == 0
    assert report.remaining == 4


def test_a_failure_while_writing_is_retried_with_back_off_and_quarantined(root: Path) -> None:
    class BrokenStore(MemoryStore):
        def write(self, activities, customers, rejects):  # type: ignore[no-untyped-def]
            raise TransientError("store unavailable")

    ports = Ports(LocalFileSource(root), BrokenStore(), MemoryLedger())
    clock = Clock()
    options = IngestOptions(max_attempts=3, retry_base_seconds=10, clock=clock)
    first = ingest_file(ports, CONFIG, export.FIRST_FILE, options)
    assert (first.status, first.retryable) == (FAILED, True)
    entry = ports.ledger.get(export.FIRST_FILE, first.etag)
    assert entry.not_before == "2021-09-28T14:00:10.000Z"
    # The reconciler leaves it alone until the back-off has passed.
    assert reconcile(ports, CONFIG, options, prefix="EmailPromotion/2021/09/28/14").processed == 0
    clock.now += timedelta(seconds=11)
    second = reconcile(ports, CONFIG, options, prefix="EmailPromotion/2021/09/28/14")
    assert second.failed == 1
    assert ports.ledger.get(export.FIRST_FILE, first.etag).not_before == "2021-09-28T14:00:31.000Z"
    clock.now += timedelta(seconds=30)
    third = reconcile(ports, CONFIG, options, prefix="EmailPromotion/2021/09/28/14")
    assert third.quarantined == 1
    assert ports.ledger.get(export.FIRST_FILE, first.etag).status == QUARANTINED
    clock.now += timedelta(days=1)
    assert reconcile(ports, CONFIG, options, prefix="EmailPromotion/2021/09/28/14").processed == 0


def test_a_permanent_failure_is_recorded_at_once_and_not_retried(root: Path) -> None:
    (root / "EmailPromotion" / "notes.txt").write_text("not data")
    ports = ports_for(root)
    report = ingest_file(ports, CONFIG, "EmailPromotion/notes.txt")
    assert report.status == FAILED and not report.retryable
    assert "not a CSV or JSON lines file" in (report.error or "")
    assert reconcile(ports, CONFIG, prefix="EmailPromotion").failed == 0


def test_a_file_claimed_by_another_worker_is_left_to_it(root: Path) -> None:
    ports = ports_for(root)
    etag = ports.source.stat(export.FIRST_FILE).etag
    assert ports.ledger.claim(
        export.FIRST_FILE, etag, "2000-01-01T00:00:00.000Z", "9999-01-01T00:00:00.000Z"
    )
    report = ingest_file(ports, CONFIG, export.FIRST_FILE)
    assert report.status == SKIPPED and ports.store.list_activities(None, False, None) == []


def test_a_crashed_workers_claim_expires_and_the_reconciler_takes_over(root: Path) -> None:
    ports = ports_for(root)
    etag = ports.source.stat(export.FIRST_FILE).etag
    ports.ledger.claim(
        export.FIRST_FILE, etag, "2000-01-01T00:00:00.000Z", "2000-01-01T00:15:00.000Z"
    )
    report = reconcile(ports, CONFIG)
    assert report.done == 4
    assert ports.ledger.get(export.FIRST_FILE, etag).status == DONE


def test_reconcile_does_everything_once_and_then_nothing(root: Path) -> None:
    ports = ports_for(root)
    first = reconcile(ports, CONFIG)
    assert (first.listed, first.done, first.skipped, first.failed) == (7, 4, 3, 0)
    assert ports.store.count_unmatched() == 2
    again = reconcile(ports, CONFIG)
    assert (again.listed, again.processed) == (7, 0)


def test_reconcile_stops_at_its_time_budget(root: Path) -> None:
    report = reconcile(ports_for(root), CONFIG, budget_seconds=0)
    assert report.processed == 0 and report.remaining == 7


def test_an_entity_no_activity_uses_is_skipped_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "Products").mkdir()
    (tmp_path / "Products" / "p.csv").write_text("Id,Name\n1,Kettle\n")
    report = ingest_file(ports_for(tmp_path), CONFIG, "Products/p.csv")
    assert report.status == SKIPPED
    assert report.reason == "entity 'Products' feeds no configured activity or customer source"
    assert report.error is None


def test_retry_failed_runs_failed_and_quarantined_files_now_despite_back_off(root: Path) -> None:
    class BrokenStore(MemoryStore):
        broken = True

        def write(self, *records):  # type: ignore[no-untyped-def]
            if self.broken:
                raise TransientError("store unavailable")
            return super().write(*records)

    (root / "EmailPromotion" / "notes.txt").write_text("not data")
    store = BrokenStore()
    ports = Ports(LocalFileSource(root), store, MemoryLedger())
    options = IngestOptions(max_attempts=1, retry_base_seconds=3600, clock=Clock())
    first = reconcile(ports, CONFIG, options)
    assert (first.quarantined, first.failed) == (4, 1)  # the data files, and notes.txt for good
    store.broken = False
    assert reconcile(ports, CONFIG, options).processed == 0
    again = reconcile(ports, CONFIG, options, retry_failed=True)
    assert (again.processed, again.done, again.failed) == (5, 4, 1)
    assert {e.status for e in ports.ledger.entries() if e.path.endswith(".csv")} == {DONE}
    assert reconcile(ports, CONFIG, options, retry_failed=True).processed == 1  # notes.txt


class _InterruptedAfterClaim(MemoryLedger):
    """A ledger whose claim lands and then, before the worker hears of it, Ctrl-C or SIGTERM
    arrives: the reply of a claim in flight when the signal comes."""

    def claim(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().claim(*args, **kwargs)
        raise KeyboardInterrupt


def test_an_interrupt_inside_the_claim_still_lets_the_file_go_at_once(root: Path) -> None:
    ledger = _InterruptedAfterClaim()
    with pytest.raises(KeyboardInterrupt):
        ingest_file(Ports(LocalFileSource(root), MemoryStore(), ledger), CONFIG, export.FIRST_FILE)
    (entry,) = ledger.entries()
    assert (entry.status, entry.error, entry.not_before) == (FAILED, "interrupted", None)


def test_an_interrupt_inside_the_claim_leaves_another_workers_claim_alone(root: Path) -> None:
    ledger = _InterruptedAfterClaim()
    source = LocalFileSource(root)
    etag = source.stat(export.FIRST_FILE).etag
    now = datetime.now(UTC)
    until = (now + timedelta(minutes=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    MemoryLedger.claim(
        ledger, export.FIRST_FILE, etag, "2000-01-01T00:00:00.000Z", until, False, "other:1"
    )
    with pytest.raises(KeyboardInterrupt):
        ingest_file(Ports(source, MemoryStore(), ledger), CONFIG, export.FIRST_FILE)
    (entry,) = ledger.entries()
    assert (entry.status, entry.holder) == ("running", "other:1")
