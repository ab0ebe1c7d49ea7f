"""A CDM manifest folder written from the store (SPEC §11): entity documents, a manifest and
CSV partitions with a header, streamed a chunk of rows at a time."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, BinaryIO, Protocol

import orjson

from shared.core import forked

MANIFEST = "footprint.manifest.cdm.json"
MAX_PARTITION_ROWS = 1_000_000
CHUNK_ROWS = 10_000  # rows encoded at once: a few MB of text
# Parts of an entity's rows read side by side, each by a forked child, one per core: SQLite
# serializes the threads of one process (its allocator's lock), processes it does not. A part
# of fewer rows than this is not worth a child.
PARALLEL_MIN_ROWS = 100_000
PROCESSES = min(os.cpu_count() or 1, 8)
_COUNT = struct.Struct("<II")  # a chunk's partition (within its part) and rows, before its bytes
# Joined by these, a chunk of all-text rows is one string the csv writer's quoting would leave
# as it is when it holds none of _QUOTED and exactly the separators the joins put in.
_CELL, _ROW = "\x1f", "\x1e"
_QUOTED = ('"', ",", "\r", "\n")
_FOUNDATIONS = [{"corpusPath": "cdm:/foundations.cdm.json"}]
_CSV_TRAIT = {
    "traitReference": "is.partition.format.CSV",
    "arguments": [
        {"name": "columnHeaders", "value": "true"},
        {"name": "delimiter", "value": ","},
        {"name": "quote", "value": '"'},
        {"name": "encoding", "value": "UTF-8"},
    ],
}


class ExportTarget(Protocol):
    """Where an export goes: a folder of files by '/'-separated path."""

    def create(self, path: str) -> BinaryIO:
        """A new file to write; it exists under `path` once closed without error."""
        ...


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # a CDM primitive: string, dateTime, integer, boolean


@dataclasses.dataclass(frozen=True)
class ExportEntity:
    """One entity of the export: its columns and its rows, streamed, each a sequence of cells
    in column order: text, numbers or None (an empty cell)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    rows: Callable[[], Iterable[Sequence[Any]]]
    text_cells: bool = False  # every cell is a str ('' for empty): encoded a chunk at a time
    # The same rows, all text, in parts the store can read apart (ExportSource's
    # activity_cell_parts): given how many parts n rows should be, a block holding their readers.
    parts: Callable[[Callable[[int], int]], AbstractContextManager[Sequence[Callable[[], Iterable[Sequence[str]]]]]] | None = None


@dataclasses.dataclass
class EntityReceipt:
    name: str
    rows: int = 0
    partitions: list[str] = dataclasses.field(default_factory=list)


def write_folder(
    target: ExportTarget, entities: Sequence[ExportEntity], max_rows: int = MAX_PARTITION_ROWS
) -> list[EntityReceipt]:
    """Write every entity's partitions and document, then the manifest naming them: a reader
    that finds the manifest finds everything it names."""
    receipts = []
    for entity in entities:
        receipt = EntityReceipt(entity.name)
        _write_rows(target, entity, max_rows, receipt)
        if not receipt.partitions:  # an entity with no rows still has its (header-only) file
            location = f"{entity.name}/part-00001.csv"
            _write_csv(target, location, entity, iter(()))
            receipt.partitions.append(location)
        _write_json(target, f"{entity.name}.cdm.json", entity_document(entity))
        receipts.append(receipt)
    _write_json(target, MANIFEST, manifest_document(entities, receipts))
    return receipts


def _write_rows(target: ExportTarget, entity: ExportEntity, max_rows: int, receipt: EntityReceipt) -> None:
    """An entity's partitions: its parts side by side where the store split its rows, else
    its rows in order, max_rows to a partition."""
    started: list[tuple[Any, Any]] = []
    try:
        with entity.parts(lambda n: _parts_for(n, max_rows)) if entity.parts else nullcontext([entity.rows]) as parts:
            if len(parts) > 1:  # each part's reading begins inside the block: one snapshot
                streams = _begin_side_by_side(entity, parts, max_rows, started)
        if len(parts) > 1:
            _write_side_by_side(target, entity, streams, started, receipt)
            return
    finally:
        for child, receive in started:  # ended already, unless something failed first
            if child.is_alive():
                child.kill()
            child.join()
            receive.close()
    for number, rows in enumerate(_partitions(parts[0](), max_rows), start=1):
        location = f"{entity.name}/part-{number:05d}.csv"
        receipt.rows += _write_csv(target, location, entity, rows)
        receipt.partitions.append(location)


def entity_document(entity: ExportEntity) -> dict[str, Any]:
    return {
        "jsonSchemaSemanticVersion": "1.0.0",
        "imports": _FOUNDATIONS,
        "definitions": [{
            "entityName": entity.name,
            "description": entity.description,
            "hasAttributes": [{"name": c.name, "dataType": c.data_type} for c in entity.columns],
        }],
    }


def manifest_document(
    entities: Sequence[ExportEntity], receipts: Sequence[EntityReceipt]
) -> dict[str, Any]:
    return {
        "jsonSchemaSemanticVersion": "1.0.0",
        "manifestName": "footprint",
        "imports": _FOUNDATIONS,
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": entity.name,
                "entityPath": f"{entity.name}.cdm.json/{entity.name}",
                "dataPartitions": [
                    {"location": location, "exhibitsTraits": [_CSV_TRAIT]}
                    for location in receipt.partitions
                ],
            }
            for entity, receipt in zip(entities, receipts, strict=True)
        ],
    }


def _partitions(rows: Iterable[Sequence[Any]], max_rows: int) -> Iterator[Iterator[Sequence[Any]]]:
    """The rows in runs of at most `max_rows`, each run consumed before the next begins."""
    it = iter(rows)
    for first in it:
        yield itertools.chain((first,), itertools.islice(it, max_rows - 1))


def _parts_for(n: int, max_rows: int) -> int:
    """Enough parts for partitions of at most max_rows; one per core where a child pays."""
    processes = PROCESSES if forked.available() else 1
    return max(1, -(-n // max_rows), min(processes, n // PARALLEL_MIN_ROWS))


def _begin_side_by_side(
    entity: ExportEntity, parts: Sequence[Callable[[], Iterable[Sequence[str]]]], max_rows: int,
    started: list[tuple[Any, Any]],
) -> list[Iterator[tuple[int, int, bytes]]]:  # fmt: skip
    """Fork a child for each part (here, from the calling thread, before any thread starts),
    that reads and encodes it, and wait for each one's first chunk: its reading has begun."""
    width = len(entity.columns)
    for part in parts:
        started.append(forked.start(lambda part=part: _encoded(part(), width, max_rows), _packed))
    streams = []
    for s in started:
        stream = forked.items_from(s, _unpacked, f"exporting {entity.name}")
        first = next(stream, None)
        streams.append(itertools.chain([first], stream) if first is not None else iter(()))
    return streams


def _write_side_by_side(
    target: ExportTarget, entity: ExportEntity, streams: list[Iterator[tuple[int, int, bytes]]],
    started: list[tuple[Any, Any]], receipt: EntityReceipt,
) -> None:  # fmt: skip
    """Each part's chunks written by a thread of this process to its partitions: part k's are
    part-0000k.csv, then part-0000k-2.csv... should more rows than max_rows be in it by the
    time it is read."""
    pool = ThreadPoolExecutor(len(streams))
    try:
        written = list(pool.map(lambda k: _write_part(target, entity, k + 1, streams[k]), range(len(streams))))
    except BaseException:  # a part failed, or Ctrl-C: the others end now, not when done
        for child, _ in started:
            child.kill()
        raise
    finally:
        pool.shutdown()
    for locations, rows in written:
        receipt.partitions += locations
        receipt.rows += rows


def _encoded(rows: Iterable[Sequence[str]], width: int, max_rows: int) -> Iterator[tuple[int, int, bytes]]:
    """(partition within the part, rows, their CSV) a chunk at a time, in the child."""
    for partition, run in enumerate(_partitions(rows, max_rows)):
        while chunk := list(itertools.islice(run, CHUNK_ROWS)):
            text = io.StringIO()
            if not _write_plain(text, chunk, width):
                csv.writer(text, lineterminator="\r\n").writerows(chunk)
            yield partition, len(chunk), text.getvalue().encode()


def _packed(item: tuple[int, int, bytes]) -> bytes:
    return _COUNT.pack(item[0], item[1]) + item[2]


def _unpacked(body: bytes) -> tuple[int, int, bytes]:
    partition, rows = _COUNT.unpack_from(body)
    return partition, rows, body[_COUNT.size :]


def _write_part(
    target: ExportTarget, entity: ExportEntity, number: int, chunks: Iterator[tuple[int, int, bytes]]
) -> tuple[list[str], int]:
    """One part's partitions, each a header and then its chunks' bytes; their paths and rows."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow([c.name for c in entity.columns])
    locations, rows = [], 0
    for partition, run in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
        locations.append(f"{entity.name}/part-{number:05d}{f'-{partition + 1}' if partition else ''}.csv")
        with target.create(locations[-1]) as binary:
            binary.write(header.getvalue().encode())
            for _, count, body in run:
                binary.write(body)
                rows += count
    if not locations:  # no row left in the part by the time it was read: a header alone
        locations.append(f"{entity.name}/part-{number:05d}.csv")
        with target.create(locations[-1]) as binary:
            binary.write(header.getvalue().encode())
    return locations, rows


def _write_csv(target: ExportTarget, path: str, entity: ExportEntity, rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    with target.create(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow([c.name for c in entity.columns])
            while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
                if not (entity.text_cells and _write_plain(text, chunk, len(entity.columns))):
                    writer.writerows(chunk)
                count += len(chunk)
        finally:
            text.detach()  # the staged file, not the wrapper, decides whether it lands
    return count


def _write_plain(text: io.TextIOBase, chunk: list[Sequence[str]], width: int) -> bool:
    """Write a chunk of all-text rows as the csv writer would, as one string, when no cell
    needs quoting (the usual case: ids, times, addresses); False, having written nothing, when
    one does."""
    body = _ROW.join(map(_CELL.join, chunk))
    if any(mark in body for mark in _QUOTED):
        return False
    if body.count(_CELL) != len(chunk) * (width - 1) or body.count(_ROW) != len(chunk) - 1:
        return False  # a cell holds a separator itself
    text.write(body.replace(_CELL, ",").replace(_ROW, "\r\n"))
    text.write("\r\n")
    return True


def json_cell(value: Any) -> str:
    """A nested value (object, list) as the JSON text of one cell."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _write_json(target: ExportTarget, path: str, document: dict[str, Any]) -> None:
    with target.create(path) as binary:
        binary.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
