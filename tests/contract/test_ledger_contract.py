"""The Ledger contract: every implementation must behave the same."""

from __future__ import annotations

from shared.core.model import DONE, FAILED, RUNNING, Counts, LedgerEntry

NOW = "2021-09-28T14:00:00.000Z"
LEASE = "2021-09-28T14:15:00.000Z"
LATER = "2021-09-28T14:30:00.000Z"


def test_a_claim_marks_the_file_running_and_counts_an_attempt(ledger):  # type: ignore[no-untyped-def]
    entry = ledger.claim("a.csv", "e1", NOW, LEASE)
    assert (entry.status, entry.attempts, entry.not_before) == (RUNNING, 1, LEASE)
    assert ledger.get("a.csv", "e1").status == RUNNING


def test_a_held_claim_refuses_a_second_worker_until_its_lease_ends(ledger):  # type: ignore[no-untyped-def]
    assert ledger.claim("a.csv", "e1", NOW, LEASE) is not None
    assert ledger.claim("a.csv", "e1", NOW, LEASE) is None
    again = ledger.claim("a.csv", "e1", LATER, "2021-09-28T14:45:00.000Z")
    assert again is not None and again.attempts == 2


def test_a_done_file_is_not_claimed_again_unless_forced(ledger):  # type: ignore[no-untyped-def]
    entry = ledger.claim("a.csv", "e1", NOW, LEASE)
    entry.status, entry.counts = DONE, Counts(rows=10, activities=7)
    entry.not_before = None
    ledger.record(entry)
    assert ledger.claim("a.csv", "e1", LATER, LATER) is None
    assert ledger.claim("a.csv", "e1", LATER, LATER, force=True).attempts == 2


def test_recorded_entries_read_back_whole(ledger):  # type: ignore[no-untyped-def]
    entry = LedgerEntry(
        "a.csv", "e1", FAILED, 3, Counts(1, 2, 3, 4, 5, 6, 7), "Events", "boom", True,
        NOW, LATER, 1234, None, "0123abcd" * 4,
    )  # fmt: skip
    ledger.record(entry)
    assert ledger.get("a.csv", "e1") == entry
    assert ledger.get("a.csv", "other") is None


def test_latest_is_the_most_recently_started_version_of_a_file(ledger):  # type: ignore[no-untyped-def]
    ledger.claim("a.csv", "e2", NOW, LEASE)
    ledger.claim("a.csv", "e1", LATER, LATER)
    ledger.claim("b.csv", "e9", LATER, LATER)
    assert ledger.latest("a.csv").etag == "e1"
    assert ledger.latest("c.csv") is None


def test_entries_can_be_listed_by_status(ledger):  # type: ignore[no-untyped-def]
    ledger.record(LedgerEntry("a.csv", "e1", DONE, 1))
    ledger.record(LedgerEntry("b.csv", "e1", FAILED, 1))
    assert [e.path for e in ledger.entries(FAILED)] == ["b.csv"]
    assert [e.path for e in ledger.entries()] == ["a.csv", "b.csv"]


def test_a_claim_names_its_holder_and_a_renewal_extends_its_lease(ledger):  # type: ignore[no-untyped-def]
    entry = ledger.claim("a.csv", "e1", NOW, LEASE, holder="host:1")
    assert ledger.renew(entry, LATER) is True
    held = ledger.get("a.csv", "e1")
    assert (held.status, held.holder, held.not_before, held.lease_until) == (
        RUNNING, "host:1", LATER, LATER,
    )  # fmt: skip
    assert ledger.claim("a.csv", "e1", "2021-09-28T14:20:00.000Z", LATER, holder="host:2") is None


def test_a_renewal_loses_once_the_claim_was_taken_over_or_finished(ledger):  # type: ignore[no-untyped-def]
    first = ledger.claim("a.csv", "e1", NOW, LEASE, holder="host:1")
    second = ledger.claim("a.csv", "e1", LATER, "2021-09-28T14:31:00.000Z", holder="host:2")
    assert second is not None
    assert ledger.renew(first, "2021-09-28T14:45:00.000Z") is False
    assert ledger.get("a.csv", "e1").holder == "host:2"
    second.status, second.not_before = DONE, None
    ledger.record(second)
    assert ledger.renew(second, "2021-09-28T14:45:00.000Z") is False
    assert ledger.get("a.csv", "e1").status == DONE


def test_the_mapping_fingerprint_of_an_entry_reads_back_everywhere(ledger):  # type: ignore[no-untyped-def]
    entry = ledger.claim("a.csv", "e1", NOW, LEASE)
    entry.status, entry.entity, entry.mapping, entry.not_before = DONE, "Events", "f" * 32, None
    ledger.record(entry)
    assert ledger.get("a.csv", "e1").mapping == "f" * 32
    assert ledger.latest("a.csv").mapping == "f" * 32
    assert [e.mapping for e in ledger.entries(DONE)] == ["f" * 32]
    # A forced claim starts afresh: the next outcome records its own mapping.
    assert ledger.claim("a.csv", "e1", LATER, LATER, force=True).mapping is None


def test_entries_awaiting_metadata_are_found_by_folder(ledger):  # type: ignore[no-untyped-def]
    for path, awaits in [("E/a.csv", True), ("E/sub/b.csv", True), ("E/c.csv", False),
                         ("E0/d.csv", True), ("Ex/e.csv", True), ("F/f.csv", True)]:  # fmt: skip
        ledger.record(LedgerEntry(path, "e1", FAILED, 1, permanent=True, awaits_metadata=awaits))
    assert [e.path for e in ledger.awaiting_metadata("E/")] == ["E/a.csv", "E/sub/b.csv"]
    assert [e.path for e in ledger.awaiting_metadata("E/sub/")] == ["E/sub/b.csv"]
    assert len(list(ledger.awaiting_metadata(""))) == 5
    assert all(e.awaits_metadata for e in ledger.awaiting_metadata(""))


def test_an_entry_recorded_or_claimed_again_no_longer_awaits_metadata(ledger):  # type: ignore[no-untyped-def]
    ledger.record(LedgerEntry("E/a.csv", "e1", FAILED, 1, permanent=True, awaits_metadata=True))
    ledger.record(LedgerEntry("E/b.csv", "e1", FAILED, 1, permanent=True, awaits_metadata=True))
    ledger.record(LedgerEntry("E/a.csv", "e1", DONE, 2))
    ledger.claim("E/b.csv", "e1", NOW, LEASE, force=True)
    assert list(ledger.awaiting_metadata("E/")) == []
    assert ledger.get("E/a.csv", "e1").awaits_metadata is False
