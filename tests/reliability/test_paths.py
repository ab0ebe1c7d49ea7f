"""One file, one ledger path: `footprint ingest` pointed at a subfolder of an export resolves
the same export root as when pointed at the root, so a rewrite ingested that way applies."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.reliability import summary, workers
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import Snapshot, compare
from tests.reliability.stores import ROOT, Backend, Stopwatch, Store, python, snapshot

SUBFOLDER = "EmailPromotion/2021/09/29"


def _ingest(store: Store, *paths: Path) -> list[dict]:
    """`footprint ingest --json --relative PATH...` without --root, as a person types it."""
    process = subprocess.Popen(
        [python(), "-m", "shared", "ingest", "--json", "--relative", *map(str, paths)],
        cwd=ROOT, env=store.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return workers.finish(process)


def _rewrite(root: Path) -> None:
    """The export's files written twice, at their final versions, with a newer mtime."""
    for path in CORPUS.earlier:
        (root / path).write_bytes(CORPUS.files[path])
        later = os.stat(root / path).st_mtime_ns + 10**9
        os.utime(root / path, ns=(later, later))


def test_ingesting_a_subfolder_of_an_export_names_its_files_as_the_root_does(
    backend: Backend, clean: Snapshot, tmp_path: Path
) -> None:
    root = CORPUS.write(tmp_path / "export", earlier=True)
    store = backend.fresh()
    watch = Stopwatch()
    first = {r["file"] for r in _ingest(store, root)}
    _rewrite(root)
    inside = [p for p in CORPUS.earlier if p.startswith(SUBFOLDER + "/")]
    reports = {r["file"]: r for r in _ingest(store, root / SUBFOLDER)}
    _ingest(store, *(root / p for p in CORPUS.earlier if p not in inside))
    diff = compare(clean, snapshot(store))
    profile, ledger = store.open()
    try:
        paths = {e.path for e in ledger.entries()}
    finally:
        profile.close()
    problems = []
    if not set(reports) <= first:
        problems.append(f"named differently: {sorted(set(reports) - first)}")
    if paths != first:
        problems.append(f"second ledger records: {sorted(paths - first)}")
    if any(reports.get(p, {}).get("status") != "done" for p in inside):
        problems.append(f"rewrites not applied: {[reports.get(p) for p in inside]}")
    ok = diff.ok and not problems
    summary.record(f"paths: ingest of an export's subfolder / {backend.name}", ok, diff.lost,
                   diff.duplicated, watch.seconds)  # fmt: skip
    assert not problems, problems
    assert diff.ok, diff
