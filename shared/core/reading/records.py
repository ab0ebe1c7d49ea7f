"""The records and bounds every reader shares: formats, limits, parsed rows, text sniffing."""

from __future__ import annotations

import codecs
import dataclasses
import re
from typing import Any, BinaryIO, NamedTuple

from shared.core.errors import PermanentError

CHUNK = 64 * 1024
_SNIFF = 8 * 1024
EXCERPT_CHARS = 200
# Text is decoded with surrogateescape: undecodable bytes become these lone surrogates, which
# valid input never produces, so a genuine U+FFFD in the data is not mistaken for damage.
UNDECODABLE = re.compile("[\udc80-\udcff]")


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
    # Checked against the stored size, and against the bytes a compressed file expands to.
    max_file_bytes: int = 2 * 1024**3


class ParsedRow(NamedTuple):
    """One record of a data file: its values, or why they could not be read."""

    row: int
    values: dict[str, Any] | None
    error: str | None
    excerpt: str


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
