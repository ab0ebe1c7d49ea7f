"""Case 5: hostile and broken input. Every kind ends with a recorded reason (the ledger's
error or a reject's), never a crash or a retry, and the good rows of a damaged file still
land. What each kind cost is in the summary's seconds, not asserted: a bomb or a huge field
is bounded by the limits its reason names, and speed is `make bench`'s to measure."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import FAILED
from tests.reliability import summary
from tests.reliability.digest import activity_key
from tests.reliability.hostile import Kind, kinds
from tests.reliability.stores import CONFIG, Backend, Stopwatch

KINDS = kinds()


@pytest.fixture(scope="session")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "export"
    for kind in KINDS:
        for path, data in kind.files.items():
            target = root / kind.name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for path, points_at in kind.links.items():
            link = root / kind.name / path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(points_at, link)
    return root


def test_there_are_at_least_thirty_kinds_of_hostile_input() -> None:
    assert len({k.name for k in KINDS}) == len(KINDS) >= 30


def _problems(kind: Kind, report, entry, rejects, landed) -> list[str]:  # type: ignore[no-untyped-def]
    problems = []
    if report.status != kind.status:
        problems.append(f"status {report.status} ({report.error}), wanted {kind.status}")
    if kind.status == FAILED and entry is not None and not entry.permanent:
        problems.append(f"retried as transient: {entry.error}")
    reasons = [report.error or report.reason or ""] + [r.reason for r in rejects]
    if kind.reason and not any(kind.reason in reason for reason in reasons):
        problems.append(f"no reason with {kind.reason!r} among {reasons}")
    if not kind.reason and rejects:
        problems.append(f"unexpected rejects {[r.reason for r in rejects]}")
    missing = set(kind.good) - landed
    if missing:
        problems.append(f"good rows lost: {sorted(missing)}")
    return problems


def test_hostile_input_is_recorded_with_a_reason_and_good_rows_land(
    backend: Backend, hostile_root: Path
) -> None:
    case = f"5 hostile input ({len(KINDS)} kinds) / {backend.name}"
    store, ledger = backend.fresh().open()
    ports = Ports(LocalFileSource(hostile_root), store, ledger)
    failures = {}
    try:
        for kind in KINDS:
            path = f"{kind.name}/{kind.target}"
            watch = Stopwatch()
            try:
                report = ingest_file(ports, CONFIG, path, IngestOptions(retry_base_seconds=0))
            except Exception as exc:  # a crash is a failure of its own
                failures[kind.name] = [f"crashed: {type(exc).__name__}: {exc}"]
                summary.record(case, False, len(kind.good), 0, watch.seconds)
                continue
            seconds = watch.seconds
            entry = ledger.get(path, report.etag) if report.etag else None
            rejects = [r for r in store.list_rejects(None) if r.file == path]
            landed = {
                a.source_activity_id for a in store.list_activities(None, False, None)
                if a.source_file == path
            }  # fmt: skip
            problems = _problems(kind, report, entry, rejects, landed)
            lost = len(set(kind.good) - landed)
            summary.record(case, not problems, lost, 0, seconds)
            if problems:
                failures[kind.name] = problems
        keys = Counter(activity_key(a.to_record()) for a in store.list_activities(None, False, None))
        duplicated = sum(n - 1 for n in keys.values())
        summary.line(case).duplicated += duplicated
        assert duplicated == 0
    finally:
        store.close()
    assert not failures, failures
