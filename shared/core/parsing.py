"""Streaming readers: file bytes -> numbered rows, by file kind; the records both readers share."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import re
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, NamedTuple

from shared.core.errors import PermanentError

CHUNK = 64 * 1024
_SNIFF = 8 * 1024
EXCERPT_CHARS = 200
# Text is decoded with surrogateescape: undecodable bytes become these lone surrogates, which
# valid input never produces, so a genuine U+FFFD in the data is not mistaken for damage.
UNDECODABLE = re.compile("[\udc80-\udcff]")
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@dataclasses.dataclass(frozen=True)
class CsvFormat:
    """How a CSV partition is written (CDM `is.partition.format.CSV`, model.json settings)."""

    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8"
    skip_lines: int = 0


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds that keep one hostile row from exhausting memory; rows beyond them are rejected."""

    max_row_bytes: int = 16 * 1024 * 1024
    max_columns: int = 4096


class ParsedRow(NamedTuple):
    """One record of a data file: its values, or why they could not be read."""

    row: int
    values: dict[str, Any] | None
    error: str | None
    excerpt: str


def file_kind(path: str) -> str | None:
    """The reader a path needs by its suffix, gzipped or not: "csv", "jsonl" or None."""
    name = path.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "jsonl"
    return None


def is_gzip(path: str) -> bool:
    return path.lower().endswith(".gz")


def iter_rows(
    stream: BinaryIO,
    path: str,
    csv_format: CsvFormat | None = None,
    columns: Sequence[str] | None = None,
    limits: Limits = Limits(),
) -> Iterator[ParsedRow]:
    """Stream the rows of one data file: bad rows come back as data, a broken file raises."""
    kind = file_kind(path)
    if kind is None:
        raise PermanentError(f"unsupported file type: {path.rsplit('/', 1)[-1]}")
    binary: BinaryIO = io.BufferedReader(_Borrowed(stream), CHUNK)  # type: ignore[assignment]
    if is_gzip(path):
        binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
    # Imported here because both readers import the records above from this module.
    if kind == "jsonl":
        from shared.core.jsonlines import iter_json_rows

        rows = iter_json_rows(binary, limits)
    else:
        from shared.core.csvlines import iter_csv_rows

        tsv = path.lower().removesuffix(".gz").endswith(".tsv")
        fmt = csv_format or CsvFormat(delimiter="\t" if tsv else ",")
        rows = iter_csv_rows(binary, fmt, columns or (), limits)
    return _gzip_guard(rows) if is_gzip(path) else rows


def sniff_text(binary: BinaryIO, encoding: str) -> None:
    """Refuse a file that is not text at all, rather than rejecting it row by row."""
    sample = binary.peek(_SNIFF)[:_SNIFF]  # type: ignore[attr-defined]
    try:
        text = codecs.getincrementaldecoder(encoding)("surrogateescape").decode(sample)
    except UnicodeError as exc:  # a codec without surrogateescape, or not this one's bytes
        raise PermanentError(f"not readable as {encoding}: {exc}") from None
    lines = text.splitlines()
    damaged = sum(1 for line in lines if "\0" in line or UNDECODABLE.search(line))
    if damaged * 2 > len(lines):
        raise PermanentError(
            f"not a text file: {damaged} of the first {len(lines)} lines hold NUL bytes"
            f" or bytes invalid in {encoding}"
        )


class _Borrowed(io.RawIOBase):
    """The caller's stream, behind a close() that leaves it open for the caller."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _gzip_guard(rows: Iterator[ParsedRow]) -> Iterator[ParsedRow]:
    try:
        yield from rows
    except _GZIP_ERRORS as exc:
        raise PermanentError(f"truncated or corrupt gzip: {exc}") from exc
