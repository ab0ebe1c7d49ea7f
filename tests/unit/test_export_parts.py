"""An entity's rows in parts written side by side: each part read and encoded by a forked
child of its own, its partitions written by the child itself (a local folder) or by a thread of
the exporting process (any other target). The partitions hold, in order, byte for byte, what
one reader writes, whether the rows come as cells or joined by CELL; a part that grew past the
partition size rolls over; a part that fails fails the export, and the manifest is not
written."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shared.adapters.local_files import LocalExportTarget
from shared.core import forked
from shared.core.errors import TransientError
from shared.core.export import folder
from shared.core.export.folder import MANIFEST, Column, ExportEntity, ExportTarget, write_folder
from shared.core.model import CELL

pytestmark = pytest.mark.skipif(not forked.available(), reason="needs fork (Linux)")

COLUMNS = (Column("A", "string"), Column("B", "string"))
HOSTILE = ['say "hi"', "a,b", "line\nbreak", "unit\x1fsep", "ünïcode ✓", ""]


def _rows(first: int, count: int) -> list[tuple[str, str]]:
    return [(f"id-{n}", HOSTILE[n % len(HOSTILE)] if n % 7 == 0 else f"https://x/{n}") for n in range(first, first + count)]


class _Piped:
    """A local folder the children may not write: what they read comes down the pipe."""

    def __init__(self, root: Path) -> None:
        self._local = LocalExportTarget(root)

    def create(self, path: str):  # type: ignore[no-untyped-def]
        return self._local.create(path)


@pytest.fixture(params=["written by the children", "sent to the parent"])
def target(request):  # type: ignore[no-untyped-def]
    return LocalExportTarget if request.param == "written by the children" else _Piped


def _joined(rows: list[tuple[str, str]]) -> Iterator[object]:
    """Rows as a store's fast path gives them: joined by CELL, but as cells where one holds CELL."""
    return (row if any(CELL in cell for cell in row) else CELL.join(row) for row in rows)


def _entity(parts: list[list[tuple[str, str]]], asked: list[int]) -> ExportEntity:
    def split(parts_for):  # type: ignore[no-untyped-def]
        asked.append(parts_for(sum(map(len, parts))))
        return contextlib.nullcontext([lambda rows=rows: _joined(rows) for rows in parts])

    everything = [r for rows in parts for r in rows]
    return ExportEntity("E", "", COLUMNS, lambda: iter(everything), text_cells=True, parts=split)


def _read(root: Path, entity: str = "E") -> tuple[list[str], list[tuple[str, ...]]]:
    manifest = orjson.loads((root / MANIFEST).read_bytes())
    locations = [p["location"] for e in manifest["entities"] if e["entityName"] == entity for p in e["dataPartitions"]]
    rows: list[tuple[str, ...]] = []
    for location in locations:
        with (root / location).open(encoding="utf-8", newline="") as f:
            found = list(csv.reader(f))
        assert found[0] == ["A", "B"], location
        rows += [tuple(r) for r in found[1:]]
    return locations, rows


def test_parts_written_side_by_side_hold_every_row_once_in_order_as_one_reader_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: type[ExportTarget]
) -> None:
    monkeypatch.setattr(folder, "PROCESSES", 3)
    monkeypatch.setattr(folder, "PARALLEL_MIN_ROWS", 10)
    monkeypatch.setattr(folder, "CHUNK_ROWS", 4)  # several chunks down each pipe
    parts, asked = [_rows(0, 30), _rows(30, 25), _rows(55, 28)], []
    receipts = write_folder(target(tmp_path / "apart"), [_entity(parts, asked)], max_rows=40)
    one = ExportEntity("E", "", COLUMNS, lambda: iter([r for p in parts for r in p]), text_cells=True)
    write_folder(LocalExportTarget(tmp_path / "one"), [one], max_rows=1000)
    locations, rows = _read(tmp_path / "apart")
    assert asked == [3]  # 83 rows: 3 parts, one per process, each of at least 10 rows
    assert locations == ["E/part-00001.csv", "E/part-00002.csv", "E/part-00003.csv"]
    assert rows == _read(tmp_path / "one")[1] == [r for p in parts for r in p]
    body = b"".join((tmp_path / "apart" / loc).read_bytes().split(b"\r\n", 1)[1] for loc in locations)
    assert body == (tmp_path / "one" / "E/part-00001.csv").read_bytes().split(b"\r\n", 1)[1]
    assert (receipts[0].rows, receipts[0].partitions) == (83, locations)


def test_a_part_grown_past_the_partition_size_rolls_over_to_more_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: type[ExportTarget]
) -> None:
    monkeypatch.setattr(folder, "PROCESSES", 2)
    monkeypatch.setattr(folder, "PARALLEL_MIN_ROWS", 1)
    parts = [_rows(0, 7), _rows(7, 2)]  # the first holds more than its share of max_rows 3
    write_folder(target(tmp_path), [_entity(parts, [])], max_rows=3)
    locations, rows = _read(tmp_path)
    assert locations == ["E/part-00001.csv", "E/part-00001-2.csv", "E/part-00001-3.csv", "E/part-00002.csv"]
    assert rows == _rows(0, 9)
    assert [len(list(csv.reader(io.StringIO((tmp_path / loc).read_text(encoding="utf-8"))))) - 1
            for loc in locations] == [3, 3, 1, 2]  # fmt: skip


def test_a_failing_part_fails_the_export_and_no_manifest_names_half_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: type[ExportTarget]
) -> None:
    monkeypatch.setattr(folder, "PROCESSES", 2)
    monkeypatch.setattr(folder, "PARALLEL_MIN_ROWS", 1)

    def broken() -> Iterator[tuple[str, str]]:
        yield from _rows(0, 5)
        raise OSError("disk went away")

    def split(parts_for):  # type: ignore[no-untyped-def]
        return contextlib.nullcontext([lambda: iter(_rows(100, 5)), broken])

    entity = ExportEntity("E", "", COLUMNS, lambda: iter(()), text_cells=True, parts=split)
    with pytest.raises(TransientError, match="exporting E: OSError: disk went away"):
        write_folder(target(tmp_path), [entity], max_rows=100)
    assert not (tmp_path / MANIFEST).exists()
    assert not (tmp_path / "E" / "part-00002.csv").exists()  # the failed part's file never lands
    assert forked.multiprocessing.active_children() == []  # every child ended and reaped
