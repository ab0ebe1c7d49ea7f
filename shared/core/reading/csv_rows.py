"""CSV files -> rows: dialects, headers, bad records, and the line splitter feeding csv.reader."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from shared.core.errors import PermanentError
from shared.core.reading.records import (
    CHUNK,
    EXCERPT_CHARS,
    UNDECODABLE,
    CsvFormat,
    Limits,
    ParsedRow,
    sniff_text,
)

# csv.field_size_limit takes a C long, which is 32 bits on Windows.
_C_LONG_MAX = 2**31 - 1
# In a file whose lines end in LF or CRLF a lone CR is data, but csv.reader ends a record at
# any CR: such CRs reach it as this lone surrogate, which decoding never produces, and are
# put back in the values of the records flagged with _LONE_CR.
_CR_STAND_IN = "\ud800"
_LONE_CR = re.compile("\r(?!\n)")
_LONE_CR_FLAG = ("", None)


def iter_csv_rows(
    binary: BinaryIO, fmt: CsvFormat, columns: Sequence[str], limits: Limits
) -> Iterator[ParsedRow]:
    """Rows of a CSV file; a format or header csv cannot use raises before the first row."""
    if not fmt.header and not columns:
        raise PermanentError("headerless CSV needs column names from a manifest")
    return _csv_rows(binary, fmt, _dialect(fmt), columns, limits)


def _dialect(fmt: CsvFormat) -> dict[str, Any]:
    """csv.reader options for a format; one csv cannot read is the manifest's fault."""
    options: dict[str, Any] = {"delimiter": fmt.delimiter, "escapechar": fmt.escape or None}
    if fmt.quote:
        options["quotechar"] = fmt.quote
    else:
        options["quoting"] = csv.QUOTE_NONE
    try:
        "".encode(fmt.encoding)  # LookupError for a codec that is not a text encoding (base64)
        csv.reader((), **options)
    except (LookupError, TypeError, ValueError) as exc:
        raise PermanentError(f"unusable CSV format {fmt}: {exc}") from exc
    return options


def _csv_rows(
    binary: BinaryIO,
    fmt: CsvFormat,
    dialect: dict[str, Any],
    columns: Sequence[str],
    limits: Limits,
) -> Iterator[ParsedRow]:
    sniff_text(binary, fmt.encoding)
    limit = limits.max_row_bytes
    # Process-wide, so set and never restored: restoring would break a parse running on another
    # thread, and all parses of one app share one Limits.
    csv.field_size_limit(min(limit, _C_LONG_MAX))
    lines = _CsvLines(binary, fmt, limit)
    reader = csv.reader(itertools.chain.from_iterable(lines), **dialect)
    names = _header(reader, lines, limits) if fmt.header else _unique(columns)
    if names is None:
        return
    width, flags, new, row = len(names), lines.flags, tuple.__new__, 0
    while True:
        try:
            for record in reader:
                if flags and _LONE_CR_FLAG in flags:
                    record = lines.restored(record)
                if len(record) == width and not flags:
                    row += 1
                    # Length checked above; zip(strict=...) would add a quarter to this line's cost.
                    yield new(ParsedRow, (row, dict(zip(names, record)), None, ""))  # noqa: B905
                elif record or flags:
                    row += 1
                    yield ParsedRow(row, None, *_bad_record(record, width, flags, dialect))
            return
        except csv.Error as exc:
            row += 1
            too_large = "field larger than field limit" in str(exc)
            message = f"row larger than {limit} bytes" if too_large else f"bad CSV: {exc}"
            yield ParsedRow(row, None, message, lines.resync())


def _header(reader: Iterator[list[str]], lines: _CsvLines, limits: Limits) -> list[str] | None:
    """Column names from the first record; None for a file without any record."""
    try:
        record = next((r for r in reader if r or lines.flags), None)
    except csv.Error as exc:
        raise PermanentError(f"unreadable header row: {exc}") from exc
    if record is None:
        return None
    if lines.flags and lines.flags[0][0].startswith("row larger"):
        raise PermanentError(f"header row larger than {limits.max_row_bytes} bytes")
    lines.flags.clear()
    names = [
        UNDECODABLE.sub("\ufffd", name.replace(_CR_STAND_IN, "\r")).strip() for name in record
    ]
    if not any(names):
        raise PermanentError("empty header row")
    if len(names) > limits.max_columns:
        raise PermanentError(f"header has {len(names)} columns, more than {limits.max_columns}")
    return _unique(names)


def _unique(names: Sequence[str]) -> list[str]:
    """Keep every column: a repeated name becomes `Name (2)`, `Name (3)`..."""
    unique: list[str] = []
    seen: set[str] = set()
    for name in names:
        candidate, count = name, 1
        while candidate in seen:
            count += 1
            candidate = f"{name} ({count})"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _bad_record(
    record: list[str], width: int, flags: list[tuple[str, str | None]], dialect: dict[str, Any]
) -> tuple[str, str]:
    """Why a record is bad, and how it read."""
    error, excerpt = flags[0] if flags else (f"expected {width} fields, found {len(record)}", None)
    flags.clear()
    return error, excerpt if excerpt is not None else _excerpt(record, dialect)


def _excerpt(record: list[str], dialect: dict[str, Any]) -> str:
    """The record written back as CSV: the raw text is gone once csv.reader has split it."""
    head = [value[:EXCERPT_CHARS] for value in record[:EXCERPT_CHARS]]
    buffer = io.StringIO()
    try:
        csv.writer(buffer, lineterminator="", **dialect).writerow(head)
        text = buffer.getvalue()
    except csv.Error:
        text = dialect["delimiter"].join(head)
    return _readable(text)


def _readable(text: str) -> str:
    return UNDECODABLE.sub("\ufffd", text[:EXCERPT_CHARS].replace(_CR_STAND_IN, "\r"))


class _CsvLines:
    """Decoded text as runs of whole lines for csv.reader, flagging lines a row cannot use.

    Clean runs reach csv.reader as StringIO objects, so per-line work stays in C; only a run
    holding NUL or undecodable bytes is walked line by line to flag the record reading it.
    No line longer than the limit reaches csv.reader, so memory stays bounded.
    """

    def __init__(self, binary: BinaryIO, fmt: CsvFormat, limit: int) -> None:
        self._read1 = binary.read1  # type: ignore[attr-defined]
        self._decode = codecs.getincrementaldecoder(fmt.encoding)("surrogateescape").decode
        self._size = min(CHUNK, limit)  # so a line inside one read is never over the limit
        self._limit = limit
        self._quote = fmt.quote or ""
        self._escaped_quote = f"{fmt.escape}{fmt.quote}" if fmt.escape and fmt.quote else ""
        self._invalid = f"invalid {fmt.encoding} bytes"
        self._skip = fmt.skip_lines
        self._started = False
        # Whether lines end in LF or CRLF (a lone CR is data) or in CR; None until seen.
        self._lf: bool | None = None
        self._tail = ""  # the last character read while that is not known
        self._pending = ""  # text to use before reading more
        self._carry: list[str] = []  # the unfinished last line of the previous run
        self._run = ""
        self._lines = io.StringIO()
        self.flags: list[tuple[str, str | None]] = []  # (error, excerpt) of the current record

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> Iterator[str]:
        run = self._next_run()
        while self._skip and run:
            self.flags.clear()  # a skipped line's problems are nobody's
            lines = io.StringIO(run, newline="")
            while self._skip and lines.readline():
                self._skip -= 1
            run = lines.read() or self._next_run()
        if not run:
            raise StopIteration
        lone_cr = self._lf and "\r" in run and run.count("\r") != run.count("\r\n")
        if lone_cr:
            run = _LONE_CR.sub(_CR_STAND_IN, run)
        self._run, self._lines = run, io.StringIO(run, newline="")
        if lone_cr or "\0" in run or not (run.isascii() or _encodable(run)):
            return self._checked(self._lines)
        return self._lines

    def _checked(self, lines: io.StringIO) -> Iterator[str]:
        for line in lines:
            if _CR_STAND_IN in line:
                self.flags.append(_LONE_CR_FLAG)
            if "\0" in line:
                self.flags.append(("NUL byte in row", None))
            elif UNDECODABLE.search(line):
                self.flags.append((self._invalid, None))
            yield line

    def _read(self) -> str:
        """More decoded text, "" at the end of the file."""
        if self._pending:
            text, self._pending = self._pending, ""
            return text
        while True:
            data = self._read1(self._size)
            try:
                text = self._decode(data, not data)
            except UnicodeError as exc:  # a codec without surrogateescape, or not this one's bytes
                raise PermanentError(f"{self._invalid}: {exc}") from None
            if text and not self._started:
                self._started, text = True, text.removeprefix("\ufeff")
            if text and self._lf is None:
                self._lf = _line_feeds(self._tail + text)
                self._tail = text[-1]
            if text or not data:
                return text

    def _next_run(self) -> str:
        """Whole lines up to the last line end read; a line over the limit becomes a stand-in."""
        parts, self._carry = self._carry, []
        size = sum(map(len, parts))
        while text := self._read():
            if size + len(text) > self._limit:
                first = self._first_end(text)
                if first < 0 or size + first + 1 > self._limit:
                    return self._stand_in(parts, text, first)
            # A final "\r" may be half of "\r\n": leave it with the unfinished line.
            last = text.rfind("\n")
            if not self._lf:
                last = max(last, text.rfind("\r", 0, len(text) - 1))
            if last >= 0:
                parts.append(text[: last + 1])
                self._carry = [text[last + 1 :]]
                return "".join(parts)
            parts.append(text)
            size += len(text)
        return "".join(parts)

    def _stand_in(self, parts: list[str], text: str, end: int) -> str:
        """Drop a line over the limit without holding it; what csv.reader gets instead keeps the
        quoting state the line would have left, so the records after it stay in step."""
        head = "".join(part[:EXCERPT_CHARS] for part in parts)
        quotes = sum(map(self._quotes, parts))
        while end < 0 and text:
            head += text[: max(EXCERPT_CHARS - len(head), 0)]
            quotes += self._quotes(text)
            text = self._read()
            end = self._first_end(text)
        quotes += self._quotes(text[: end + 1])
        excerpt = _readable((head + text[: end + 1][:EXCERPT_CHARS]).rstrip("\r\n"))
        self._pending = text[end + 1 :]
        self.flags.append((f"row larger than {self._limit} bytes", excerpt))
        return self._quote * (quotes % 2) + "\n"

    def _first_end(self, text: str) -> int:
        return text.find("\n") if self._lf else _first_end(text)

    def restored(self, record: list[str]) -> list[str]:
        """The record with its lone CRs back; their flags cleared."""
        self.flags[:] = [flag for flag in self.flags if flag != _LONE_CR_FLAG]
        return [value.replace(_CR_STAND_IN, "\r") for value in record]

    def _quotes(self, text: str) -> int:
        if not self._quote:
            return 0
        escaped = text.count(self._escaped_quote) if self._escaped_quote else 0
        return text.count(self._quote) - escaped

    def resync(self) -> str:
        """After csv.reader gave up on a record mid-line: drop the rest of the record, and
        return the line it failed on as the excerpt."""
        self.flags.clear()
        line = _line_before(self._run, self._lines.tell())
        text = self._lines.read() + self._pending + "".join(self._carry)
        self._pending, self._carry = "", []
        # No line reaching csv.reader is over the limit, so a field that is spans lines: the
        # failing line began inside quotes, and the record ends where they balance.
        self._pending = self._drop_quoted(text, bool(self._quote) + self._quotes(line))
        return _readable(line)

    def _drop_quoted(self, text: str, quotes: int) -> str:
        """Drop lines until the quotes counted balance at a line end; return the text after."""
        lines, complete = io.StringIO(text, newline=""), True
        while quotes % 2 or not complete:
            line = lines.readline()
            if not line:
                if not (text := self._read()):
                    return ""
                lines = io.StringIO(text, newline="")
                continue
            quotes += self._quotes(line)
            complete = line[-1] in "\r\n"
        return lines.read()


def _encodable(text: str) -> bool:
    """False if text holds a lone surrogate: 4x faster than searching for one with a regex."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _line_feeds(text: str) -> bool | None:
    """Whether the first line end of text is LF or CRLF (True) or a lone CR (False); None
    when text holds none yet, or ends in a CR that may be half of a CRLF."""
    cr, lf = text.find("\r"), text.find("\n")
    if cr < 0 or 0 <= lf < cr:
        return True if lf >= 0 else None
    return text[cr + 1] == "\n" if cr + 1 < len(text) else None


def _first_end(text: str) -> int:
    """Index of the last character of the first line end in text, or -1."""
    ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
    if not ends:
        return -1
    first = min(ends)
    return first + 1 if text.startswith("\r\n", first) else first


def _line_before(text: str, end: int) -> str:
    """The line of text that ends at index end."""
    body = end - (2 if text.startswith("\r\n", end - 2) else int(text[end - 1 : end] in "\r\n"))
    return text[max(text.rfind("\n", 0, body), text.rfind("\r", 0, body)) + 1 : end]
