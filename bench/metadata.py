"""What CDM metadata costs per file: a manifest of thousands of entity documents, and a new
document arriving in a ledger of thousands of recorded files.

    python -m bench.metadata [--quick]    # prints the rows; `make bench` includes them
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from bench.table import Row
from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core.cdm.catalog import MetadataCache
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import DONE, SKIPPED, LedgerEntry

COLUMNS = ("Signal.Export.Id", "Signal.Timestamp", "Signal.Action.Name", "Signal.User.Id")
CONFIG = bootstrap.load_config(None)


def metadata_rows(tmp: Path, quick: bool = False) -> list[Row]:
    entities, files = (500, 5) if quick else (5_000, 20)
    rows = documents_rows(tmp / "documents", entities, files)
    for recorded in (200, 2_000) if quick else (2_000, 20_000):
        rows.append(new_document_row(tmp / f"ledger-{recorded}", recorded))
    return rows


def documents_rows(root: Path, entities: int, files: int) -> list[Row]:
    """Files of one entity of a manifest whose entities each have their own document, each
    file ingested on its own as the per-file function does: before, every file read every
    document; now a worker's cache reads each once, again only at a new ETag."""
    names = ["EmailPromotion", *(f"Entity{i:05d}" for i in range(entities - 1))]
    _write(root, "m.manifest.cdm.json", {"jsonSchemaSemanticVersion": "1.0.0", "manifestName": "m",
           "entities": [_declaration(n) for n in names]})  # fmt: skip
    for name in names:
        _write(root, f"{name}.cdm.json", _document(name))
    data = ",".join(COLUMNS) + "\n" + "".join(f"e{i},2021-09-29T10:00:00Z,Email promotion,R-{i}\n"
                                               for i in range(100))  # fmt: skip
    for i in range(files):
        (root / f"EmailPromotion/2021/p{i}.csv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"EmailPromotion/2021/p{i}.csv").write_text(data)
    before = 2  # each costs a full read of the documents: two make the point
    uncached = _ingest_each(root, range(before), IngestOptions())
    cached = _ingest_each(root, range(files), IngestOptions(metadata=MetadataCache()))
    what = f"{files} files of a {entities:,}-entity manifest, a document each, one by one"
    next_ms = sum(cached[1:]) / (files - 1) * 1000
    return [
        Row(f"{what}: before (documents read per file; {before} files)", before, "files",
            sum(uncached), None, f"{sum(uncached) / before * 1000:,.0f} ms per file"),
        Row(f"{what}: now (read once per worker, by ETag)", files, "files", sum(cached), None,
            f"{sum(cached) / files * 1000:,.0f} ms per file: the first {cached[0] * 1000:,.0f} ms "
            f"(reads the documents), each next {next_ms:,.0f} ms"),
    ]  # fmt: skip


def new_document_row(root: Path, recorded: int, waiting: int = 50, documents: int = 10) -> Row:
    """New documents arriving under a folder of `waiting` files that failed for want of column
    names, in a ledger of `recorded` files done or skipped as unmapped elsewhere: the cost per
    affected file stays the same whatever the ledger holds."""
    _write(root, "Waiting/m.manifest.cdm.json", {"jsonSchemaSemanticVersion": "1.0.0",
           "manifestName": "m", "entities": [_declaration("EmailPromotion", headerless=True)]})  # fmt: skip
    for i in range(waiting):
        (root / f"Waiting/EmailPromotion/2021/p{i}.csv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"Waiting/EmailPromotion/2021/p{i}.csv").write_text(f"e{i},2021-09-29,x,R-1\n")
    db = SqliteDatabase(root.parent / f"{root.name}.db")
    ledger = SqliteLedger(db)
    for i in range(recorded):
        status = DONE if i % 2 else SKIPPED
        ledger.record(LedgerEntry(f"Done/{i % 100}/p{i}.csv", "e1", status, 1))
    ports = Ports(LocalFileSource(root), SqliteStore(db), ledger)
    options = IngestOptions(metadata=MetadataCache())
    for i in range(waiting):
        ingest_file(ports, CONFIG, f"Waiting/EmailPromotion/2021/p{i}.csv", options)
    started = time.perf_counter()
    for k in range(documents):
        _write(root, f"Waiting/Extra{k}.cdm.json", _document(f"Extra{k}"))
        ingest_file(ports, CONFIG, f"Waiting/Extra{k}.cdm.json", options)
    seconds = time.perf_counter() - started
    db.conn.close()
    affected = waiting * documents
    return Row(f"{documents} new documents over {waiting} waiting files, {recorded:,} recorded files",
               affected, "retries", seconds, None,
               f"{seconds / affected * 1000:.2f} ms per affected file")  # fmt: skip


def _ingest_each(root: Path, numbers: range, options: IngestOptions) -> list[float]:
    """Seconds of each file's ingest, into a store of its own outside the export."""
    db = SqliteDatabase(root.parent / f"store-{time.monotonic_ns()}.db")
    ports = Ports(LocalFileSource(root), SqliteStore(db), SqliteLedger(db))
    seconds = []
    for i in numbers:
        started = time.perf_counter()
        report = ingest_file(ports, CONFIG, f"EmailPromotion/2021/p{i}.csv", options)
        seconds.append(time.perf_counter() - started)
        assert report.status == DONE, report
    db.conn.close()
    return seconds


def _declaration(name: str, headerless: bool = False) -> dict:
    pattern: dict = {"rootLocation": name, "globPattern": "/**/*.csv"}
    if headerless:
        pattern["exhibitsTraits"] = [{"traitReference": "is.partition.format.CSV",
                                      "arguments": [{"name": "columnHeaders", "value": "false"}]}]  # fmt: skip
    return {"type": "LocalEntity", "entityName": name, "entityPath": f"{name}.cdm.json/{name}",
            "dataPartitionPatterns": [pattern]}  # fmt: skip


def _document(name: str) -> dict:
    attributes = [{"name": c, "dataFormat": "String"} for c in COLUMNS]
    return {"jsonSchemaSemanticVersion": "1.0.0",
            "definitions": [{"entityName": name, "hasAttributes": attributes}]}  # fmt: skip


def _write(root: Path, path: str, doc: dict) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(orjson.dumps(doc))


if __name__ == "__main__":
    import tempfile

    from bench.table import print_table

    with tempfile.TemporaryDirectory(prefix="footprint-bench-metadata-") as tmp:
        print_table(metadata_rows(Path(tmp), quick="--quick" in sys.argv), 0, 0)
