"""Case 1: every BlobCreated event delivered up to three times, shuffled, with stale and
ignored ones among them, leaves exactly the store a clean single run leaves."""

from __future__ import annotations

import random

import pytest

from shared import bootstrap
from shared.core.cdm.catalog import is_metadata
from shared.core.model import DONE, SKIPPED
from tests.reliability import summary
from tests.reliability.corpus import CORPUS
from tests.reliability.delivery import IGNORED_APIS, Container, Upload, call, event
from tests.reliability.digest import Snapshot, compare
from tests.reliability.stores import Backend, Stopwatch

TRIALS = {"sqlite": 5, "azure-tables": 2}


def _deliveries(rng: random.Random, container: str, uploads: list[Upload]) -> list:  # type: ignore[type-arg]
    """Each upload's event one to three times, with ignored writes and a foreign container."""
    events = []
    for upload in uploads:
        events += [event(container, upload) for _ in range(rng.randint(1, 3))]
        events.append(event(container, upload, api=rng.choice(IGNORED_APIS)))
        if rng.random() < 0.3:
            events.append(event("othercontainer", upload))
        if rng.random() < 0.3:
            events.append(event(container, upload, etag="0x8D0000000000000"))  # stale ETag
    return events


def _trial(rng: random.Random, azurite, store) -> tuple[Snapshot, dict]:  # type: ignore[no-untyped-def]
    with Container(azurite, store) as box:
        first = [box.upload(p, CORPUS.earlier.get(p, data)) for p, data in CORPUS.files.items()]
        pending = _deliveries(rng, box.name, first)
        rng.shuffle(pending)
        # Half the first versions' events arrive before the rewrites, the rest after them,
        # shuffled with the rewrites' own: those read the blob as it is now.
        now, pending = pending[: len(pending) // 2], pending[len(pending) // 2 :]
        for e in now:
            call("on_blob_created", e)
        rewrites = [box.upload(p, CORPUS.files[p]) for p in CORPUS.earlier]
        pending += _deliveries(rng, box.name, rewrites)
        rng.shuffle(pending)
        for e in pending:
            call("on_blob_created", e)
        rt = bootstrap.runtime()
        ledger = {path: rt.ports.ledger.get(path, etag) for path, etag in box.etags().items()}
        return Snapshot.of(rt.ports.store, CORPUS.customer_ids), ledger


@pytest.mark.azurite
def test_redelivered_shuffled_stale_and_ignored_events_leave_the_clean_store(
    backend: Backend, clean: Snapshot, azurite
) -> None:  # type: ignore[no-untyped-def]
    case = f"1 redelivery and order / {backend.name}"
    failures = []
    for trial in range(TRIALS[backend.name]):
        watch = Stopwatch()
        rng = random.Random(f"redelivery-{trial}")
        got, ledger = _trial(rng, azurite, backend.fresh())
        diff = compare(clean, got)
        settled = all(
            entry is not None and entry.status == (SKIPPED if is_metadata(path) else DONE)
            for path, entry in ledger.items()
        )
        summary.record(case, diff.ok and settled, diff.lost, diff.duplicated, watch.seconds)
        if not (diff.ok and settled):
            failures.append((trial, diff, {p: e and e.status for p, e in ledger.items()}))
    assert not failures, failures
