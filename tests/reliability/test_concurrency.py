"""Case 2: four worker processes ingest overlapping sets of files at once, the same file among
them: every file is done once per ETag and the store equals a clean single run."""

from __future__ import annotations

import random
from pathlib import Path

from shared.core.cdm.catalog import is_metadata
from shared.core.model import DONE, SKIPPED
from tests.reliability import summary, workers
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import compare
from tests.reliability.stores import Backend, Reference, Stopwatch, snapshot

WORKERS = 4
TRIALS = {"sqlite": 3, "azure-tables": 2}
SHARED_FILE = "EmailPromotion/2021/09/29/12/part-0002.csv"


def _assignments(rng: random.Random) -> list[list[str]]:
    """Every worker gets the metadata and SHARED_FILE; every other file goes to two or more."""
    paths = sorted(CORPUS.files)
    sets: list[list[str]] = [[p for p in paths if is_metadata(p)] + [SHARED_FILE] for _ in range(WORKERS)]
    for path in paths:
        if is_metadata(path) or path == SHARED_FILE:
            continue
        for index in rng.sample(range(WORKERS), rng.randint(2, WORKERS)):
            sets[index].append(path)
    for files in sets:
        rng.shuffle(files)
    return sets


def _order_free(counts: dict[str, int]) -> dict[str, int]:
    # How many activities were unmatched when written depends on whether customers came first.
    return {k: v for k, v in counts.items() if k != "unmatched"}


def test_four_workers_on_overlapping_files_process_each_file_once(
    backend: Backend, reference: Reference, export_root: Path
) -> None:
    case = f"2 concurrency (4 processes) / {backend.name}"
    failures = []
    for trial in range(TRIALS[backend.name]):
        watch = Stopwatch()
        rng = random.Random(f"concurrency-{trial}")
        store = backend.fresh()
        running = [workers.start(store, export_root, files, 20) for files in _assignments(rng)]
        reports = [line for process in running for line in workers.finish(process)]
        done = {p: sum(1 for r in reports if r["file"] == p and r["status"] == DONE) for p in CORPUS.files}
        profile, ledger = store.open()
        try:
            entries = {e.path: e for e in ledger.entries()}
        finally:
            profile.close()
        problems = [f"{p}: done {n} times" for p, n in done.items() if n != (0 if is_metadata(p) else 1)]
        for path in CORPUS.files:
            entry = entries.get(path)
            want = SKIPPED if is_metadata(path) else DONE
            if entry is None or entry.status != want or entry.attempts != 1:
                problems.append(f"{path}: ledger {entry}")
            elif _order_free(entry.counts.to_record()) != _order_free(reference.counts[path]):
                problems.append(f"{path}: ledger counts {entry.counts} != {reference.counts[path]}")
        diff = compare(reference.snapshot, snapshot(store))
        summary.record(case, diff.ok and not problems, diff.lost, diff.duplicated, watch.seconds)
        if problems or not diff.ok:
            failures.append((trial, diff, problems))
    assert not failures, "\n".join(map(repr, failures))  # whole: the digest says what differs
