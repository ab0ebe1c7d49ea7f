"""Properties of the readers: whatever csv.writer or orjson writes reads back exactly."""

from __future__ import annotations

import csv
import gzip
import io
import itertools

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.core.reading.records import CsvFormat
from shared.core.reading.rows import iter_rows

# Any text a file can hold: no NUL (a damaged row) and no lone surrogates (not encodable).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
NAMES = st.lists(TEXT.map(str.strip).filter(bool), min_size=1, max_size=5, unique=True)


class _Trickle(io.RawIOBase):
    """Hands bytes over a few at a time, so every boundary lands inside lines and characters."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data, self._sizes, self._turn = data, sizes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self._sizes[self._turn % len(self._sizes)], len(self._data))
        self._turn += 1
        buffer[:size], self._data = self._data[:size], self._data[size:]
        return size


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    names = draw(NAMES)
    rows = draw(st.lists(st.lists(TEXT, min_size=len(names), max_size=len(names)), max_size=12))
    return names, rows


def _stream(data: bytes, sizes: list[int] | None, gzipped: bool) -> io.RawIOBase | io.BytesIO:
    if gzipped:
        data = gzip.compress(data)
    return _Trickle(data, sizes) if sizes else io.BytesIO(data)


READS = st.none() | st.lists(st.integers(1, 7), min_size=1, max_size=5)


@settings(deadline=None)  # trickled reads and gzip make run times uneven, not wrong
@given(
    table=tables(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    header=st.booleans(),
    preamble=st.lists(TEXT.filter(lambda t: "\r" not in t and "\n" not in t), max_size=3),
    line_end=st.sampled_from(["\r\n", "\n"]),
    sizes=READS,
    gzipped=st.booleans(),
)
def test_any_table_written_by_csv_writer_reads_back_exactly(
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    header: bool,
    preamble: list[str],
    line_end: str,
    sizes: list[int] | None,
    gzipped: bool,
) -> None:
    names, rows = table
    # With "\n" line ends csv.writer leaves a bare "\r" unquoted: no reader can tell that
    # from a line end, so such a file is not a faithful table to begin with.
    assume(line_end == "\r\n" or not any("\r" in v for v in itertools.chain(names, *rows)))
    buffer = io.StringIO(newline="")
    buffer.writelines(line + line_end for line in preamble)
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    if header:
        writer.writerow(names)
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    assume(not data.startswith("\ufeff".encode()))  # a leading U+FEFF is a byte order mark
    fmt = CsvFormat(header=header, delimiter=delimiter, skip_lines=len(preamble))
    path = "Events/part.csv.gz" if gzipped else "Events/part.csv"
    parsed = list(iter_rows(_stream(data, sizes, gzipped), path, fmt, names))  # type: ignore[arg-type]
    assert [(p.row, p.values, p.error) for p in parsed] == [
        (number, dict(zip(names, row, strict=True)), None) for number, row in enumerate(rows, 1)
    ]


@settings(deadline=None)
@given(
    objects=st.lists(st.dictionaries(TEXT, TEXT, max_size=6), max_size=12),
    sizes=READS,
    gzipped=st.booleans(),
)
def test_any_flat_json_objects_written_as_lines_read_back_exactly(
    objects: list[dict[str, str]], sizes: list[int] | None, gzipped: bool
) -> None:
    data = b"".join(orjson.dumps(o) + b"\n" for o in objects)
    path = "Events/part.jsonl.gz" if gzipped else "Events/part.jsonl"
    parsed = list(iter_rows(_stream(data, sizes, gzipped), path))  # type: ignore[arg-type]
    assert [(p.row, p.values, p.error) for p in parsed] == [
        (number, o, None) for number, o in enumerate(objects, 1)
    ]
