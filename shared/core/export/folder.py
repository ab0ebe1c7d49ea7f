"""A CDM manifest folder written from the store (SPEC §11): entity documents, a manifest and
CSV partitions with a header, streamed a chunk of rows at a time."""

from __future__ import annotations

import csv
import dataclasses
import functools
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
from shared.core.model import CELL, split_cells

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
_CELL, _ROW = CELL, "\x1e"
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
    """Where an export goes: a folder of files by '/'-separated path. One whose `forkable` is
    true (a local folder) may be written by forked children, each a part of an entity's rows:
    the rows then never cross a pipe. Any other is written by the calling process."""

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
                streams = _begin_side_by_side(target, entity, parts, max_rows, started)
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
    target: ExportTarget, entity: ExportEntity, parts: Sequence[Callable[[], Iterable[Sequence[str]]]],
    max_rows: int, started: list[tuple[Any, Any]],
) -> list[Iterator[Any]]:  # fmt: skip
    """Fork a child for each part (here, from the calling thread, before any thread starts),
    that reads and encodes it, and wait for each one's first message: its reading has begun.
    A child writes its part's partitions itself where the target allows it, else sends them."""
    width = len(entity.columns)
    in_child = getattr(target, "forkable", False)
    for number, part in enumerate(parts, start=1):
        if in_child:
            make = functools.partial(_part_written, target, entity, number, part, max_rows)
            started.append(forked.start(make, bytes))
        else:
            started.append(forked.start(lambda part=part: _encoded(part(), width, max_rows), _packed))
    streams = []
    for s in started:
        stream = forked.items_from(s, bytes if in_child else _unpacked, f"exporting {entity.name}")
        first = next(stream, None)
        streams.append(itertools.chain([first], stream) if first is not None and not in_child else stream)
    return streams


def _part_written(
    target: ExportTarget, entity: ExportEntity, number: int, part: Callable[[], Iterable[Sequence[str]]],
    max_rows: int,
) -> Iterator[bytes]:  # fmt: skip
    """In a child: a word once the part's first chunk is read, then, the part written, its
    partitions and rows."""
    chunks = _encoded(part(), len(entity.columns), max_rows)
    first = next(chunks, None)
    yield b"begun"
    locations, rows = _write_part(target, entity, number, chunks if first is None else itertools.chain([first], chunks))
    yield orjson.dumps([locations, rows])


def _write_side_by_side(
    target: ExportTarget, entity: ExportEntity, streams: list[Iterator[Any]],
    started: list[tuple[Any, Any]], receipt: EntityReceipt,
) -> None:  # fmt: skip
    """Each part's chunks written to its partitions: part k's are part-0000k.csv, then
    part-0000k-2.csv... should more rows than max_rows be in it by the time it is read. By the
    children themselves, which then say what they wrote, or by a thread of this process each."""
    if getattr(target, "forkable", False):
        written = [tuple(orjson.loads(b"".join(stream))) for stream in streams]
    else:
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
            yield partition, len(chunk), _csv_bytes(chunk, width, text_cells=True)


def _packed(item: tuple[int, int, bytes]) -> bytes:
    return _COUNT.pack(item[0], item[1]) + item[2]


def _unpacked(body: bytes) -> tuple[int, int, bytes]:
    partition, rows = _COUNT.unpack_from(body)
    return partition, rows, body[_COUNT.size :]


def _write_part(
    target: ExportTarget, entity: ExportEntity, number: int, chunks: Iterator[tuple[int, int, bytes]]
) -> tuple[list[str], int]:
    """One part's partitions, each a header and then its chunks' bytes; their paths and rows."""
    header = _header(entity)
    locations, rows = [], 0
    for partition, run in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
        locations.append(f"{entity.name}/part-{number:05d}{f'-{partition + 1}' if partition else ''}.csv")
        with target.create(locations[-1]) as binary:
            binary.write(header)
            for _, count, body in run:
                binary.write(body)
                rows += count
    if not locations:  # no row left in the part by the time it was read: a header alone
        locations.append(f"{entity.name}/part-{number:05d}.csv")
        with target.create(locations[-1]) as binary:
            binary.write(header)
    return locations, rows


def _write_csv(target: ExportTarget, path: str, entity: ExportEntity, rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    with target.create(path) as binary:
        binary.write(_header(entity))
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            binary.write(_csv_bytes(chunk, len(entity.columns), entity.text_cells))
            count += len(chunk)
    return count


def _header(entity: ExportEntity) -> bytes:
    return _csv_bytes([[c.name for c in entity.columns]], len(entity.columns), text_cells=False)


def _csv_bytes(chunk: list[Sequence[Any]], width: int, text_cells: bool) -> bytes:
    """A chunk of rows as the csv writer writes them (minimal quoting, CRLF), as UTF-8. All-text
    rows (each its cells, or them joined by CELL) that need no quoting, the usual case (ids,
    times, addresses), are joined as one string instead."""
    if text_cells:
        body = _ROW.join([row if isinstance(row, str) else _CELL.join(row) for row in chunk])
        if not any(mark in body for mark in _QUOTED) and body.count(_CELL) == len(chunk) * (width - 1) \
                and body.count(_ROW) == len(chunk) - 1:  # no cell holds a separator itself
            return (body.replace(_CELL, ",").replace(_ROW, "\r\n") + "\r\n").encode()
        chunk = list(map(split_cells, chunk))
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(chunk)
    return text.getvalue().encode()


def json_cell(value: Any) -> str:
    """A nested value (object, list) as the JSON text of one cell."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _write_json(target: ExportTarget, path: str, document: dict[str, Any]) -> None:
    with target.create(path) as binary:
        binary.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
