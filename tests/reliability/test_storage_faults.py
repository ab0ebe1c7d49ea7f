"""Case 4: Azurite stopped and started again in the middle of a run. Transient errors are
retried (by Event Grid redelivering, then the reconciler), nothing is quarantined for them,
and the store ends up as a clean single run leaves it."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator

import pytest

from shared import bootstrap
from shared.core.cdm.catalog import is_metadata
from shared.core.errors import TransientError
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions
from shared.core.model import DONE, SKIPPED
from tests.azurite import Azurite
from tests.reliability import summary
from tests.reliability.corpus import CORPUS
from tests.reliability.delivery import Container, call, event
from tests.reliability.digest import Snapshot, compare
from tests.reliability.stores import Backend, Stopwatch, later

pytestmark = pytest.mark.azurite
TRIALS = 2
# The outage lasts until this many deliveries have failed against the stopped emulator.
OUTAGE_FAILURES = 2
# Event Grid retries a failed delivery with back-off; a test cannot wait minutes for it.
# Only tries once storage is back count: how long it was down depends on the machine.
MAX_DELIVERIES = 30
# Bounds on waiting for progress, generous for a loaded machine.
PATIENCE_SECONDS = 120.0


@pytest.fixture(scope="module")
def flaky_azurite() -> Iterator[Azurite]:
    """An Azurite of this module alone, keeping its data in files so it survives restarts."""
    emulator = Azurite(persistent=True)
    yield emulator
    emulator.close()


class EventGrid:
    """Delivers events to the per-file function on a thread, redelivering failed ones later."""

    def __init__(self, events: list, outage_after: int) -> None:  # type: ignore[type-arg]
        self.queue = collections.deque((e, 0, 0.0) for e in events)
        self.delivered = 0
        # Set once `outage_after` events are in; the delivery after the next waits for `down`,
        # so the outage surely catches deliveries however fast the files go in.
        self.outage_after = outage_after
        self.ready, self.down, self.up = threading.Event(), threading.Event(), threading.Event()
        self.outage_felt = threading.Event()  # set at OUTAGE_FAILURES failed deliveries
        self.errors: collections.Counter[str] = collections.Counter()
        self.gave_up: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.queue:
            if self.delivered == self.outage_after:
                self.ready.set()
            elif self.delivered > self.outage_after:
                self.down.wait(timeout=PATIENCE_SECONDS)
            e, tries, not_before = self.queue.popleft()
            time.sleep(max(0.0, not_before - time.monotonic()))
            try:
                call("on_blob_created", e)
                self.delivered += 1
            except Exception as exc:  # what the Functions host would log, then redeliver
                self.errors[type(exc).__name__] += 1
                if self.errors.total() >= OUTAGE_FAILURES:
                    self.outage_felt.set()
                tries += 1 if self.up.is_set() else 0
                if tries >= MAX_DELIVERIES:
                    self.gave_up.append(e.subject)
                else:
                    self.queue.append((e, tries, time.monotonic() + min(0.2 * 2**tries, 2.0)))


def _trial(flaky: Azurite, backend: Backend) -> tuple[Snapshot, EventGrid, list]:  # type: ignore[type-arg]
    store = Backend(backend.name, backend.workdir, flaky if backend.azurite else None).fresh()
    with Container(flaky, store) as box:
        uploads = [box.upload(path, data) for path, data in CORPUS.files.items()]
        grid = EventGrid([event(box.name, u) for u in uploads], outage_after=4)
        rt = bootstrap.runtime()
        grid.thread.start()
        assert grid.ready.wait(timeout=PATIENCE_SECONDS), "no delivery went in"
        flaky.stop()  # mid-run: a few files done, one likely half written
        grid.down.set()
        assert grid.outage_felt.wait(timeout=PATIENCE_SECONDS), dict(grid.errors)
        flaky.start()
        grid.up.set()
        grid.thread.join(timeout=5 * PATIENCE_SECONDS)
        assert not grid.thread.is_alive(), f"deliveries left: {len(grid.queue)}"
        # The reconciler's next runs: after the leases of attempts cut short have expired.
        late = reconcile(rt.ports, rt.config, IngestOptions(clock=later(901), retry_base_seconds=0))
        print(f"{backend.name}: delivery errors {dict(grid.errors)}, reconciler after: {late.to_record()}")
        etags = box.etags()
        entries = [rt.ports.ledger.get(path, etag) for path, etag in etags.items()]
        unsettled = [
            e for e in entries
            if e is None or e.status != (SKIPPED if is_metadata(e.path) else DONE)
        ]  # fmt: skip
        unsettled += [e for e in rt.ports.ledger.entries() if e.status == "quarantined"]
        return Snapshot.of(rt.ports.store, CORPUS.customer_ids), grid, unsettled


def test_a_storage_outage_mid_run_is_retried_and_loses_nothing(
    backend: Backend, clean: Snapshot, flaky_azurite: Azurite
) -> None:
    case = f"4 storage outage (Azurite restart) / {backend.name}"
    failures = []
    for trial in range(TRIALS):
        watch = Stopwatch()
        got, grid, unsettled = _trial(flaky_azurite, backend)
        diff = compare(clean, got)
        # Failed deliveries must be the app's own transient error, never an SDK exception.
        leaked = set(grid.errors) - {TransientError.__name__}
        ok = diff.ok and not unsettled and not leaked and not grid.gave_up and grid.errors
        summary.record(case, bool(ok), diff.lost, diff.duplicated, watch.seconds)
        if not ok:
            failures.append((trial, diff, unsettled, dict(grid.errors), grid.gave_up))
    assert not failures, failures
