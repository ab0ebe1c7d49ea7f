"""JSON lines: one object per line -> rows of text values, nested keys joined with dots."""

from __future__ import annotations

import codecs
import functools
import itertools
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from shared.core.reading.records import EXCERPT_CHARS, Limits, ParsedRow, sniff_text

_SKIP_CHUNK = 64 * 1024
_TEXT_ONLY = frozenset({str})
# The only way JSON text holds a NUL: no value of a row kept holds one (SQLite's printf, which
# the export reads activities with, ends a value at a NUL).
_NUL_ESCAPE = b"\\u0000"


def iter_json_rows(binary: BinaryIO, limits: Limits) -> Iterator[ParsedRow]:
    """Rows of a JSON lines file; a line that is not a JSON object is a bad row."""
    sniff_text(binary, "utf-8")
    limit, loads, new, row = limits.max_row_bytes, orjson.loads, tuple.__new__, 0
    read = functools.partial(binary.readline, limit + 1)
    for line in itertools.chain((read().removeprefix(codecs.BOM_UTF8),), iter(read, b"")):
        if len(line) > limit and line[-1:] != b"\n":
            _skip_line(binary, line)
            error = f"row larger than {limit} bytes"
        else:
            try:
                document = loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue
                error = f"invalid JSON: {exc.msg}"
            else:
                if type(document) is not dict:
                    error = "not a JSON object"
                elif len(values := _flatten(document)) > limits.max_columns:
                    error = f"more than {limits.max_columns} fields"
                elif _NUL_ESCAPE in line and any("\x00" in k or "\x00" in v for k, v in values.items()):
                    error = "NUL character in a value"  # as a CSV row holding a NUL byte is
                else:
                    row += 1
                    yield new(ParsedRow, (row, values, None, ""))
                    continue
        row += 1
        yield ParsedRow(row, None, error, _excerpt(line))


def _flatten(document: dict[str, Any]) -> dict[str, str]:
    """{"Signal": {"View": {"Uri": "x"}}} -> {"Signal.View.Uri": "x"}, every value a str."""
    if set(map(type, document.values())) <= _TEXT_ONLY:
        return document  # flat text, the usual shape: nothing to convert
    flat: dict[str, str] = {}
    # An explicit stack, not recursion: orjson accepts 1024 levels, more than Python's limit.
    stack = [("", document)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if type(value) is str:
                flat[prefix + key] = value
            elif type(value) is dict:
                stack.append((f"{prefix}{key}.", value))
            else:
                flat[prefix + key] = _text(value)
    return flat


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is list:
        return orjson.dumps(value).decode()
    return str(value)


def _skip_line(binary: BinaryIO, head: bytes) -> None:
    """Read past the rest of an over-long line without holding it."""
    line = head
    while line and line[-1:] != b"\n":
        line = binary.readline(_SKIP_CHUNK)


def _excerpt(line: bytes) -> str:
    return line[: EXCERPT_CHARS * 4].decode("utf-8", "replace").rstrip("\r\n")[:EXCERPT_CHARS]
