"""The export's CSV partitions: all-text rows encoded a chunk at a time come out byte for byte
as the csv writer writes them, whatever the cells hold."""

from __future__ import annotations

import csv
import io
from typing import Any

from shared.core.export import folder
from shared.core.export.folder import Column, ExportEntity, write_folder
from shared.core.export.profiles import measure_cells


class _Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def create(self, path: str) -> Any:
        files = self.files

        class _File(io.BytesIO):
            def __exit__(self, *exc: object) -> None:
                files[path] = self.getvalue()
                super().__exit__(*exc)

        return _File()


COLUMNS = (Column("A", "string"), Column("B", "string"), Column("C", "string"))
PLAIN = [(f"id-{n}", "https://shop.example.com/p/1", "") for n in range(25)]
HOSTILE = ['say "hi"', "a,b", "line\nbreak", "cr\rhere", "unit\x1fsep", "row\x1esep", "ünïcode ✓", " padded "]


def _written(rows: list[tuple[str, ...]], text_cells: bool, chunk: int) -> bytes:
    target = _Files()
    old, folder.CHUNK_ROWS = folder.CHUNK_ROWS, chunk
    try:
        write_folder(target, [ExportEntity("E", "", COLUMNS, lambda: iter(rows), text_cells=text_cells)])
    finally:
        folder.CHUNK_ROWS = old
    return target.files["E/part-00001.csv"]


def _csv_module(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in COLUMNS])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def test_plain_rows_are_written_as_the_csv_writer_writes_them() -> None:
    assert _written(PLAIN, text_cells=True, chunk=10) == _csv_module(PLAIN)


def test_a_cell_that_needs_quoting_or_holds_a_separator_is_written_as_the_csv_writer_does() -> None:
    for value in HOSTILE:
        rows = [*PLAIN[:12], ("x", value, ""), *PLAIN[12:]]
        assert _written(rows, text_cells=True, chunk=10) == _csv_module(rows), value
        assert _written(rows, text_cells=True, chunk=10) == _written(rows, text_cells=False, chunk=10)


def test_a_measure_value_goes_to_the_column_of_its_kind() -> None:
    assert measure_cells("number", 3) == ("number", 3, None, None)
    assert measure_cells("time", "2026-06-01T00:00:00.000Z") == ("time", None, "2026-06-01T00:00:00.000Z", None)
    assert measure_cells("text", "https://x/p/1") == ("text", None, None, "https://x/p/1")
    assert measure_cells("time", None) == ("time", None, None, None)  # null: no value column
    # Stored before the definitions changed: placed by the value's own type.
    assert measure_cells("number", "2026-06-01") == ("text", None, None, "2026-06-01")
    assert measure_cells(None, 7) == ("number", 7, None, None)
    assert measure_cells("number", True) == ("text", None, None, "true")
