"""Case 3: the ingest process killed with SIGKILL at random points, then the reconciler runs
(once the dead worker's leases expired): the store equals a clean single run."""

from __future__ import annotations

import random
import time
from pathlib import Path

from shared.core.cdm.catalog import is_metadata
from shared.core.model import DONE, SKIPPED
from tests.reliability import summary, workers
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import compare
from tests.reliability.stores import Backend, Reference, Stopwatch, settle

TRIALS = {"sqlite": 20, "azure-tables": 10}
# Small batches: many writes per file, so a kill lands between them as often as not.
BATCH = {"sqlite": 1, "azure-tables": 20}


def _paths(rng: random.Random) -> list[str]:
    """The export's files in the order a reconciler takes them, data in a shuffled order."""
    data = [p for p in CORPUS.files if not is_metadata(p)]
    rng.shuffle(data)
    return sorted(p for p in CORPUS.files if is_metadata(p)) + data


def _ingest_window(backend: Backend, root: Path) -> tuple[float, float]:
    """When an uninterrupted worker prints its first file and its last: kills land between."""
    watch = Stopwatch()
    worker = workers.start(backend.fresh(), root, _paths(random.Random(0)), BATCH[backend.name])
    assert worker.stdout is not None
    first = None
    for _ in worker.stdout:
        first = watch.seconds if first is None else first
    workers.finish(worker)
    assert first is not None
    return first, watch.seconds


def test_a_worker_killed_at_random_points_loses_and_duplicates_nothing(
    backend: Backend, reference: Reference, export_root: Path
) -> None:
    case = f"3 crash (SIGKILL) + reconcile / {backend.name}"
    start, end = _ingest_window(backend, export_root)
    failures, finished_before_kill = [], []
    for trial in range(TRIALS[backend.name]):
        watch = Stopwatch()
        rng = random.Random(f"crash-{trial}")
        store = backend.fresh()
        # Every other trial reads each file in a forked child (SQLite only; see forked.py):
        # the kill then lands on a process whose child is reading.
        reader = {"FOOTPRINT_READ_IN_CHILD_BYTES": "1" if trial % 2 else "0"}
        worker = workers.start(store, export_root, _paths(rng), BATCH[backend.name], **reader)
        time.sleep(rng.uniform(start * 0.9, end))
        finished_before_kill.append(len(workers.kill(worker)))
        got = settle(store, export_root)
        diff = compare(reference.snapshot, got)
        profile, ledger = store.open()
        try:
            unsettled = [
                e for e in ledger.entries()
                if e.etag and e.status != (SKIPPED if is_metadata(e.path) else DONE)
            ]  # fmt: skip
        finally:
            profile.close()
        summary.record(case, diff.ok and not unsettled, diff.lost, diff.duplicated, watch.seconds)
        if unsettled or not diff.ok:
            failures.append((trial, diff, unsettled))
    print(f"{case}: files finished before each kill: {finished_before_kill}")
    assert not failures, failures
    # The kills landed all over the run: some before the first file, most in the middle.
    assert any(0 < n < len(CORPUS.files) for n in finished_before_kill), finished_before_kill
