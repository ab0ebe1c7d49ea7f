"""CDM metadata at scale: a new entity document retries only the files it can change, found
through the ledger's index, and a manifest of many documents is read once, not once a file.
Work is counted through wrappers of the real ledger and file source, never timed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson

from shared.adapters.local_files import LocalFileSource
from shared.core.cdm.catalog import MetadataCache
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import DONE, SKIPPED, LedgerEntry
from shared.core.ports import Ledger
from tests.reliability import summary
from tests.reliability.corpus import COLUMNS
from tests.reliability.hostile import csv_trait, goods, ids, manifest, table
from tests.reliability.stores import CONFIG, Backend, Stopwatch

UNMAPPED, WAITING, NEW_DOCUMENTS = 20, 3, 3


class CountingLedger:
    """A real ledger, counting the entries its scans and index queries hand out."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.scanned = 0
        self.indexed = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._ledger, name)

    def entries(self, status: str | None = None) -> Iterator[LedgerEntry]:
        found = list(self._ledger.entries(status))
        self.scanned += len(found)
        return iter(found)

    def awaiting_metadata(self, folder: str) -> Iterator[LedgerEntry]:
        found = list(self._ledger.awaiting_metadata(folder))
        self.indexed += len(found)
        return iter(found)


class CountingSource(LocalFileSource):
    """A local source counting the files opened, by path."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: Counter[str] = Counter()

    def open(self, path: str):  # type: ignore[no-untyped-def, override]
        self.opened[path] += 1
        return super().open(path)


def _document(entity: str, columns: tuple[str, ...] = COLUMNS) -> bytes:
    attributes = [{"name": c, "dataFormat": "String"} for c in columns]
    return orjson.dumps({"jsonSchemaSemanticVersion": "1.0.0",
                         "definitions": [{"entityName": entity, "hasAttributes": attributes}]})  # fmt: skip


def _declaration(entity: str, folder: str, headerless: bool = False) -> dict:
    pattern: dict = {"rootLocation": folder, "globPattern": "/**/*.csv"}
    if headerless:
        pattern["exhibitsTraits"] = csv_trait(columnHeaders="false")
    return {"type": "LocalEntity", "entityName": entity, "entityPath": f"{entity}.cdm.json/{entity}",
            "dataPartitionPatterns": [pattern]}  # fmt: skip


def _headerless(prefix: str) -> bytes:
    return table(goods(prefix)).split(b"\n", 1)[1]


def _write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def test_new_metadata_retries_only_the_files_waiting_for_a_schema_through_an_index(
    backend: Backend, tmp_path: Path
) -> None:
    root = tmp_path / "export"
    # Mystery is described but feeds nothing; EmailPromotion is headerless and its document,
    # which names the columns, arrives last.
    _write(root, {
        "m.manifest.cdm.json": manifest([_declaration("Mystery", "Mystery"),
                                         _declaration("EmailPromotion", "EmailPromotion", True)]),
        "Mystery.cdm.json": _document("Mystery", ("A", "B")),
        **{f"Mystery/2021/p{i}.csv": b"A,B\n1,2\n" for i in range(UNMAPPED)},
        **{f"EmailPromotion/2021/p{i}.csv": _headerless(f"w{i}") for i in range(WAITING)},
    })  # fmt: skip
    store, real = backend.fresh().open()
    ledger = CountingLedger(real)
    ports = Ports(LocalFileSource(root), store, ledger)  # type: ignore[arg-type]
    options = IngestOptions(retry_base_seconds=0)
    watch = Stopwatch()
    try:
        for path in sorted(p.relative_to(root).as_posix() for p in root.rglob("*.csv")):
            ingest_file(ports, CONFIG, path, options)
        for k in range(NEW_DOCUMENTS):  # documents nothing reads: exporters add them all the time
            _write(root, {f"Extra{k}.cdm.json": _document(f"Extra{k}")})
            ingest_file(ports, CONFIG, f"Extra{k}.cdm.json", options)
        _write(root, {"EmailPromotion.cdm.json": _document("EmailPromotion")})
        ingest_file(ports, CONFIG, "EmailPromotion.cdm.json", options)
        entries = {e.path: e for e in real.entries()}
        landed = {a.source_activity_id for a in store.list_activities(None, False, None)}
    finally:
        store.close()
    unmapped = [e for p, e in entries.items() if p.startswith("Mystery/")]
    waiting = [e for p, e in entries.items() if p.startswith("EmailPromotion/")]
    problems = []
    if ledger.scanned:
        problems.append(f"metadata scanned {ledger.scanned} ledger entries")
    if ledger.indexed != WAITING * (NEW_DOCUMENTS + 1):
        problems.append(f"the index gave {ledger.indexed} entries, not the waiting files' own")
    if any(e.status != SKIPPED or e.attempts != 1 for e in unmapped):
        problems.append(f"unmapped files retried: {[(e.status, e.attempts) for e in unmapped]}")
    if any(e.status != DONE for e in waiting):
        problems.append(f"waiting files not done: {[(e.status, e.error) for e in waiting]}")
    want = {i for n in range(WAITING) for i in ids(f"w{n}")}
    lost = len(want - landed)
    summary.record(f"scale: metadata retries the files it can change / {backend.name}",
                   not problems and not lost, lost, 0, watch.seconds)  # fmt: skip
    assert not problems, problems
    assert not lost


def test_the_documents_of_a_manifest_are_read_once_until_one_changes(
    backend: Backend, tmp_path: Path
) -> None:
    root, entities, files = tmp_path / "export", 50, 10
    names = ["EmailPromotion", *(f"E{i}" for i in range(entities - 1))]
    _write(root, {
        "m.manifest.cdm.json": manifest([_declaration(n, n) for n in names]),
        **{f"{n}.cdm.json": _document(n) for n in names},
        **{f"EmailPromotion/2021/p{i}.csv": table(goods(f"d{i}")) for i in range(files)},
    })  # fmt: skip
    source = CountingSource(root)
    store, ledger = backend.fresh().open()
    ports = Ports(source, store, ledger)
    # As the Functions app: each file on its own, a worker's one cache of metadata behind them.
    options = IngestOptions(metadata=MetadataCache())
    watch = Stopwatch()
    try:
        for i in range(files // 2):
            ingest_file(ports, CONFIG, f"EmailPromotion/2021/p{i}.csv", options)
        first = dict(source.opened)
        _write(root, {"E3.cdm.json": _document("E3", ("Changed",))})
        for i in range(files // 2, files):
            ingest_file(ports, CONFIG, f"EmailPromotion/2021/p{i}.csv", options)
        statuses = {e.path: e.status for e in ledger.entries()}
    finally:
        store.close()
    documents = [f"{n}.cdm.json" for n in names]
    problems = []
    if any(first.get(d) != 1 for d in documents):
        problems.append(f"read more than once: {sorted(d for d in documents if first.get(d) != 1)}")
    again = {d: source.opened[d] - first.get(d, 0) for d in documents if source.opened[d] > first.get(d, 0)}
    if again != {"E3.cdm.json": 1}:
        problems.append(f"after one document changed, read again: {again}")
    if set(statuses.values()) != {DONE}:
        problems.append(f"files not done: {statuses}")
    summary.record(f"scale: entity documents read once per worker / {backend.name}",
                   not problems, 0, 0, watch.seconds)  # fmt: skip
    assert not problems, problems
