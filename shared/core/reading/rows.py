"""Streaming readers: file bytes -> numbered rows, by file kind (CSV, JSON lines, gzip)."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from shared.core.errors import PermanentError
from shared.core.reading.csv_rows import iter_csv_rows
from shared.core.reading.json_rows import iter_json_rows
from shared.core.reading.records import CHUNK, CsvFormat, Limits, ParsedRow

DEFAULT_LIMITS = Limits()
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


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
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[ParsedRow]:
    """Stream the rows of one data file: bad rows come back as data, a broken file raises."""
    kind = file_kind(path)
    if kind is None:
        raise PermanentError(f"unsupported file type: {path.rsplit('/', 1)[-1]}")
    binary: BinaryIO = io.BufferedReader(_Borrowed(stream), CHUNK)  # type: ignore[assignment]
    if is_gzip(path):
        expanded = gzip.GzipFile(fileobj=binary, mode="rb")
        binary = io.BufferedReader(_Bounded(expanded, limits.max_file_bytes), CHUNK)  # type: ignore[assignment]
    if kind == "jsonl":
        rows = iter_json_rows(binary, limits)
    else:
        tsv = path.lower().removesuffix(".gz").endswith(".tsv")
        fmt = csv_format or CsvFormat(delimiter="\t" if tsv else ",")
        rows = iter_csv_rows(binary, fmt, columns or (), limits)
    return _gzip_guard(rows) if is_gzip(path) else rows


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


class _Bounded(io.RawIOBase):
    """Decompressed bytes, up to the file size limit: a small gzip can expand to terabytes."""

    def __init__(self, stream: gzip.GzipFile, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # read1: what one step decompresses, so a break loses no more than that step.
        data = self._stream.read1(len(buffer))
        size = len(data)
        buffer[:size] = data
        self._left -= size
        if self._left < 0:
            raise PermanentError(f"file larger than {self._limit} bytes after decompression")
        return size


def _gzip_guard(rows: Iterator[ParsedRow]) -> Iterator[ParsedRow]:
    try:
        yield from rows
    except _GZIP_ERRORS as exc:
        raise PermanentError(f"truncated or corrupt gzip: {exc}") from exc
