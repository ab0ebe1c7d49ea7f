"""Reading export files into numbered rows: CSV dialects, JSON lines, gzip, damage, memory."""

from __future__ import annotations

import gc
import gzip
import io
import random
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from shared.core.errors import PermanentError
from shared.core.reading.records import CsvFormat, Limits, ParsedRow
from shared.core.reading.rows import file_kind, is_gzip, iter_rows


def _rows(data: bytes, path: str = "Events/part-0001.csv", **kwargs: object) -> list[ParsedRow]:
    return list(iter_rows(io.BytesIO(data), path, **kwargs))  # type: ignore[arg-type]


def _good(rows: list[ParsedRow]) -> list[tuple[int, dict[str, object] | None]]:
    return [(r.row, r.values) for r in rows if r.error is None]


def _bad(rows: list[ParsedRow]) -> list[tuple[int, str | None]]:
    return [(r.row, r.error) for r in rows if r.error is not None]


class _Generated(io.RawIOBase):
    """A raw stream that makes its bytes on the fly, as a blob download hands them over."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._chunk:
            self._chunk = memoryview(next(self._chunks, b""))
            if not self._chunk:
                return 0
        size = min(len(buffer), len(self._chunk))
        buffer[:size], self._chunk = self._chunk[:size], self._chunk[size:]
        return size


class _Failing(io.RawIOBase):
    """Hands over some bytes, then fails the way a dropped connection does."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._data:
            raise ConnectionResetError("connection reset by peer")
        size = min(len(buffer), len(self._data))
        buffer[:size], self._data = self._data[:size], self._data[size:]
        return size


EVENT_COLUMNS = [
    "Signal.Export.Id",
    "Signal.Timestamp",
    "Signal.Name",
    *(f"C{i}" for i in range(12)),
]


def _event_lines(count: int) -> Iterator[bytes]:
    """A CSV of about 1 KB rows, made 1000 rows at a time."""
    yield ",".join(EVENT_COLUMNS).encode() + b"\r\n"
    title = b'"A long page title, with ""quotes"" and a comma ' + b"-" * 800 + b'"'
    for start in range(0, count, 1000):
        yield b"".join(
            f'evt-{i},2021-09-28T14:07:11.{i % 1000:03d}Z,"Page, view",'.encode()
            + b"%s,%s\r\n" % (title, b",".join([b"value-%d" % i] * 11))
            for i in range(start, min(start + 1000, count))
        )


# --- file kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a/part-1.csv", "csv"),
        ("a/PART-1.CSV.GZ", "csv"),
        ("a/part-1.tsv", "csv"),
        ("a/part-1.json", "jsonl"),
        ("a/part-1.jsonl.gz", "jsonl"),
        ("a/part-1.NDJSON", "jsonl"),
        ("a/part-1.parquet", None),
        ("a/part-1.gz", None),
        ("a/csv", None),
    ],
)
def test_the_kind_of_a_file_comes_from_its_suffix_in_any_case(path: str, kind: str | None) -> None:
    assert file_kind(path) == kind


def test_only_a_gz_suffix_marks_a_gzipped_file() -> None:
    assert is_gzip("x/part.csv.GZ")
    assert not is_gzip("x/part.csv")
    assert not is_gzip("x/part.gzip.csv")


def test_an_unknown_suffix_is_a_permanent_error_naming_the_file() -> None:
    with pytest.raises(PermanentError, match=r"unsupported file type: part\.parquet"):
        _rows(b"PAR1", "Events/part.parquet")


# --- CSV --------------------------------------------------------------------------------------


def test_a_header_row_names_the_columns_and_values_stay_text() -> None:
    rows = _rows(b" Id , Name ,Empty\n1,Ann,\n")
    assert rows == [ParsedRow(1, {"Id": "1", "Name": "Ann", "Empty": ""}, None, "")]


def test_a_headerless_csv_takes_its_columns_from_the_manifest_in_order() -> None:
    rows = _rows(b"1,Ann\n2,Bo\n", csv_format=CsvFormat(header=False), columns=["Id", "Name"])
    assert _good(rows) == [(1, {"Id": "1", "Name": "Ann"}), (2, {"Id": "2", "Name": "Bo"})]


def test_a_headerless_csv_without_column_names_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="headerless CSV needs column names"):
        _rows(b"1,Ann\n", csv_format=CsvFormat(header=False))


def test_a_quoted_field_may_hold_delimiters_quotes_and_newlines() -> None:
    data = b'Id,Text,N\r\n1,"a, ""quoted""\r\nsecond line\nthird",x\r\n2,plain,y\r\n'
    rows = _rows(data)
    assert _good(rows) == [
        (1, {"Id": "1", "Text": 'a, "quoted"\r\nsecond line\nthird', "N": "x"}),
        (2, {"Id": "2", "Text": "plain", "N": "y"}),
    ]


def test_crlf_lf_and_blank_lines_all_read_the_same_and_blank_lines_are_not_rows() -> None:
    lf = _rows(b"Id,Name\n\n1,Ann\n\n\n2,Bo")
    crlf = _rows(b"Id,Name\r\n\r\n1,Ann\r\n\r\n\r\n2,Bo\r\n")
    assert (
        _good(lf)
        == _good(crlf)
        == [(1, {"Id": "1", "Name": "Ann"}), (2, {"Id": "2", "Name": "Bo"})]
    )


def test_a_utf8_bom_is_dropped_from_the_first_column_name() -> None:
    rows = _rows(b'\xef\xbb\xbf"Id",Name\n1,Ann\n')
    assert rows[0].values == {"Id": "1", "Name": "Ann"}


def test_a_bom_is_dropped_before_the_first_value_of_a_headerless_file() -> None:
    rows = _rows(b"\xef\xbb\xbf1,Ann\n", csv_format=CsvFormat(header=False), columns=["Id", "Name"])
    assert rows[0].values == {"Id": "1", "Name": "Ann"}


def test_a_semicolon_delimiter_with_custom_quote_and_escape_characters() -> None:
    fmt = CsvFormat(delimiter=";", quote="'", escape="\\")
    rows = _rows(b"Id;Text\n1;'a;b'\n2;'it\\'s'\n3;x\\;y\n", csv_format=fmt)
    assert [r.values for r in rows] == [
        {"Id": "1", "Text": "a;b"},
        {"Id": "2", "Text": "it's"},
        {"Id": "3", "Text": "x;y"},
    ]


def test_a_tsv_file_without_a_format_is_read_with_tabs() -> None:
    rows = _rows(b"Id\tName\n1\tAnn, B\n", "Events/part.tsv")
    assert rows[0].values == {"Id": "1", "Name": "Ann, B"}


def test_skip_lines_drops_physical_lines_before_the_header_even_with_stray_quotes() -> None:
    data = b'exported by "tool\r\n# second preamble line\r\nId,Name\r\n1,Ann\r\n'
    rows = _rows(data, csv_format=CsvFormat(skip_lines=2))
    assert _good(rows) == [(1, {"Id": "1", "Name": "Ann"})]


def test_damage_in_skipped_lines_does_not_reject_the_first_row() -> None:
    data = b"pre\x00amble \xff\n" + b"x" * 500 + b"\n1,Ann\n2,Bo\n"
    fmt = CsvFormat(header=False, skip_lines=2)
    rows = _rows(data, csv_format=fmt, columns=["Id", "Name"], limits=Limits(max_row_bytes=100))
    assert _good(rows) == [(1, {"Id": "1", "Name": "Ann"}), (2, {"Id": "2", "Name": "Bo"})]


def test_a_latin1_file_decodes_with_its_declared_encoding() -> None:
    rows = _rows(
        "Name,City\nJosé,Köln\n".encode("latin-1"), csv_format=CsvFormat(encoding="latin-1")
    )
    assert rows[0].values == {"Name": "José", "City": "Köln"}


def test_a_utf16_file_decodes_with_its_declared_encoding() -> None:
    rows = _rows("Name,City\nJosé,Köln\n".encode("utf-16"), csv_format=CsvFormat(encoding="utf-16"))
    assert rows[0].values == {"Name": "José", "City": "Köln"}


def test_ragged_rows_are_rejected_and_the_others_land_with_their_row_numbers() -> None:
    rows = _rows(b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n\n10,11,12\n")
    assert _good(rows) == [
        (1, {"a": "1", "b": "2", "c": "3"}),
        (4, {"a": "10", "b": "11", "c": "12"}),
    ]
    assert _bad(rows) == [(2, "expected 3 fields, found 2"), (3, "expected 3 fields, found 4")]
    assert [r.excerpt for r in rows] == ["", "4,5", "6,7,8,9", ""]


def test_a_row_with_invalid_utf8_is_rejected_and_its_excerpt_shows_the_damage() -> None:
    rows = _rows(b"Id,Name\n1,Ann\n2,J\xe9r\xf4me\n3,Bo\n")
    assert _bad(rows) == [(2, "invalid utf-8 bytes")]
    assert rows[1].excerpt == "2,J\ufffdr\ufffdme"
    assert _good(rows) == [(1, {"Id": "1", "Name": "Ann"}), (3, {"Id": "3", "Name": "Bo"})]


def test_a_genuine_replacement_character_in_the_data_is_not_damage() -> None:
    rows = _rows("Id,Name\n1,J\ufffdr\u00f4me\n".encode())
    assert _good(rows) == [(1, {"Id": "1", "Name": "J\ufffdr\u00f4me"})]


def test_a_row_with_a_nul_byte_is_rejected() -> None:
    rows = _rows(b"Id,Name\n1,Ann\n2,B\x00o\n3,Cy\n")
    assert _bad(rows) == [(2, "NUL byte in row")]
    assert [r.row for r in rows if r.values] == [1, 3]


def test_a_nul_byte_inside_a_multiline_field_rejects_that_record_only() -> None:
    rows = _rows(b'Id,Text\n1,"line one\nline\x00 two"\n2,ok\n')
    assert _bad(rows) == [(1, "NUL byte in row")]
    assert _good(rows) == [(2, {"Id": "2", "Text": "ok"})]


def test_a_huge_field_is_rejected_and_parsing_continues() -> None:
    data = b"Id,Text\n1,short\n2," + b"x" * 5000 + b"\n3,after\n"
    rows = _rows(data, limits=Limits(max_row_bytes=100))
    assert _bad(rows) == [(2, "row larger than 100 bytes")]
    assert rows[1].excerpt == "2," + "x" * 198
    assert _good(rows) == [(1, {"Id": "1", "Text": "short"}), (3, {"Id": "3", "Text": "after"})]


@pytest.mark.parametrize("read_size", [None, 5])
def test_a_huge_quoted_field_over_many_lines_is_one_bad_row_and_the_next_rows_stay_in_step(
    read_size: int | None,
) -> None:
    body = b"a line, with a comma\n" * 50
    tail = b"t" * 20  # after the closing quote: a stop at the quote would leave it as a row
    data = b'Id,Text\n1,short\n2,"' + body + b'end of it",' + tail + b'\n3,after\n4,"ok\nfine"\n'
    size = read_size or len(data)
    # Read straight from the raw stream, one chunk per read, so lines split across reads.
    stream: Any = _Generated(data[i : i + size] for i in range(0, len(data), size))
    rows = list(iter_rows(stream, "Events/part.csv", limits=Limits(max_row_bytes=100)))
    assert _bad(rows) == [(2, "row larger than 100 bytes")]
    assert _good(rows) == [
        (1, {"Id": "1", "Text": "short"}),
        (3, {"Id": "3", "Text": "after"}),
        (4, {"Id": "4", "Text": "ok\nfine"}),
    ]


def test_a_huge_line_that_opens_a_quoted_field_is_one_bad_row_with_its_continuation() -> None:
    data = b'Id,Text\n1,"' + b"y" * 500 + b'\nstill, inside\nend",9\n2,after\n'
    rows = _rows(data, limits=Limits(max_row_bytes=100))
    assert _bad(rows) == [(1, "row larger than 100 bytes")]
    assert rows[0].excerpt == '1,"' + "y" * 197
    assert _good(rows) == [(2, {"Id": "2", "Text": "after"})]


def test_duplicate_header_names_are_all_kept_with_a_counter() -> None:
    rows = _rows(b"Id,Name,Name,Name\n1,a,b,c\n")
    assert rows[0].values == {"Id": "1", "Name": "a", "Name (2)": "b", "Name (3)": "c"}


def test_an_empty_header_row_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="empty header row"):
        _rows(b"\n\n , ,\n1,2,3\n")


def test_an_empty_file_has_no_rows() -> None:
    assert _rows(b"") == []
    assert _rows(b"Id,Name\r\n") == []


def test_a_header_wider_than_the_column_limit_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="4 columns, more than 3"):
        _rows(b"a,b,c,d\n1,2,3,4\n", limits=Limits(max_columns=3))


@pytest.mark.parametrize(
    "fmt",
    [CsvFormat(delimiter=";;"), CsvFormat(encoding="no-such-encoding"), CsvFormat(quote="''")],
)
def test_a_csv_format_the_reader_cannot_use_is_a_permanent_error(fmt: CsvFormat) -> None:
    with pytest.raises(PermanentError, match="unusable CSV format"):
        _rows(b"a,b\n1,2\n", csv_format=fmt)


@pytest.mark.parametrize("path", ["Events/part.csv", "Events/part.jsonl"])
def test_binary_junk_is_not_a_text_file(path: str) -> None:
    junk = random.Random(7).randbytes(20_000).replace(b"\n", b"\x00\n")
    with pytest.raises(PermanentError, match="not a text file"):
        _rows(b"\x89PNG\r\n\x1a\n" + junk, path)


def test_a_utf16_file_declared_as_utf8_is_not_a_text_file() -> None:
    data = "Id,Name\n1,Ann\n2,Bo\n".encode("utf-16-le")
    with pytest.raises(PermanentError, match="not a text file"):
        _rows(data)


# --- gzip, streams ----------------------------------------------------------------------------


def test_gzipped_csv_and_json_lines_are_decompressed_while_reading() -> None:
    csv_rows = _rows(gzip.compress(b"Id,Name\n1,Ann\n"), "Events/part.csv.gz")
    json_rows = _rows(gzip.compress(b'{"Id": "1", "Name": "Ann"}\n'), "Events/part.json.gz")
    assert csv_rows == json_rows == [ParsedRow(1, {"Id": "1", "Name": "Ann"}, None, "")]


@pytest.mark.parametrize("path", ["Events/part.csv.gz", "Events/part.jsonl.gz"])
def test_a_truncated_gzip_yields_the_rows_before_the_break_then_raises(path: str) -> None:
    rng = random.Random(3)
    events = [{"Id": str(i), "Noise": rng.randbytes(30).hex()} for i in range(3000)]
    if path.endswith(".csv.gz"):
        text = "Id,Noise\n" + "".join(f"{e['Id']},{e['Noise']}\n" for e in events)
    else:
        text = "".join(orjson.dumps(e).decode() + "\n" for e in events)
    compressed = gzip.compress(text.encode())
    got: list[ParsedRow] = []
    with pytest.raises(PermanentError, match="truncated or corrupt gzip"):
        for row in iter_rows(io.BytesIO(compressed[: len(compressed) // 2]), path):
            got.append(row)
    assert 1000 < len(got) < 3000
    assert [(r.row, r.values) for r in got] == [
        (i + 1, e) for i, e in enumerate(events[: len(got)])
    ]


def test_a_file_that_is_not_gzip_at_all_is_a_corrupt_gzip() -> None:
    with pytest.raises(PermanentError, match="truncated or corrupt gzip"):
        _rows(b"Id,Name\n1,Ann\n", "Events/part.csv.gz")


@pytest.mark.parametrize("path", ["Events/part.csv", "Events/part.csv.gz", "Events/part.jsonl"])
def test_an_io_error_from_the_stream_propagates_unchanged(path: str) -> None:
    data = b"Id,Name\n" + b"1,Ann\n" * 50_000
    if path.endswith(".jsonl"):
        data = b'{"Id": "1"}\n' * 50_000
    if path.endswith(".gz"):
        data = gzip.compress(data)
    with pytest.raises(ConnectionResetError):
        list(iter_rows(_Failing(data[: len(data) // 2]), path))  # type: ignore[arg-type]


def test_the_callers_stream_is_left_open_even_when_reading_stops_early() -> None:
    stream = io.BytesIO(b"Id,Name\n1,Ann\n2,Bo\n")
    rows = iter_rows(stream, "Events/part.csv")
    next(rows)
    del rows
    gc.collect()
    assert not stream.closed
    list(iter_rows(stream := io.BytesIO(gzip.compress(b"{}\n")), "Events/part.json.gz"))
    assert not stream.closed


# --- JSON lines -------------------------------------------------------------------------------


def test_json_lines_flatten_nested_objects_to_dotted_keys() -> None:
    line = b'{"Signal": {"Export": {"Id": "e1"}, "View": {"Uri": "https://x"}}, "Name": "click"}\n'
    rows = _rows(line, "Events/part.jsonl")
    assert rows == [
        ParsedRow(
            1, {"Signal.Export.Id": "e1", "Signal.View.Uri": "https://x", "Name": "click"}, None, ""
        )
    ]


def test_json_scalars_become_text_like_csv_and_lists_stay_json() -> None:
    line = b'{"n": 12, "f": 1.5, "t": true, "no": false, "z": null, "l": [1, {"a": "x"}], "s": "y"}'
    rows = _rows(line, "Events/part.json")
    assert rows[0].values == {
        "n": "12", "f": "1.5", "t": "true", "no": "false", "z": "", "l": '[1,{"a":"x"}]', "s": "y",
    }  # fmt: skip


def test_a_json_line_that_is_not_an_object_is_rejected() -> None:
    rows = _rows(b'[1, 2]\n"text"\n42\n{"Id": "1"}\n', "Events/part.ndjson")
    assert _bad(rows) == [
        (1, "not a JSON object"),
        (2, "not a JSON object"),
        (3, "not a JSON object"),
    ]
    assert rows[0].excerpt == "[1, 2]"
    assert _good(rows) == [(4, {"Id": "1"})]


def test_invalid_json_is_rejected_with_a_short_reason_and_blank_lines_are_skipped() -> None:
    rows = _rows(b'{"Id": "1"}\n\n   \r\n{"Id": \n{"Id": "2"}\n', "Events/part.jsonl")
    assert _good(rows) == [(1, {"Id": "1"}), (3, {"Id": "2"})]
    [(row, error)] = _bad(rows)
    assert row == 2
    assert error is not None and error.startswith("invalid JSON: ") and "line" not in error


def test_deeply_nested_json_is_a_bad_row_not_a_crash() -> None:
    too_deep = b'{"a":' * 2000 + b"1" + b"}" * 2000
    deep = b'{"a":' * 1000 + b'"1"' + b"}" * 1000
    rows = _rows(too_deep + b"\n" + deep + b"\n", "Events/part.jsonl")
    assert rows[0].row == 1 and rows[0].error is not None
    assert rows[0].error.startswith("invalid JSON")
    assert rows[1].values == {".".join(["a"] * 1000): "1"}


def test_a_json_line_over_the_limit_is_rejected_and_the_next_line_reads() -> None:
    data = b'{"Id": "1"}\n{"Text": "' + b"z" * 5000 + b'"}\n{"Id": "3"}\n'
    rows = _rows(data, "Events/part.jsonl", limits=Limits(max_row_bytes=100))
    assert _bad(rows) == [(2, "row larger than 100 bytes")]
    assert rows[1].excerpt.startswith('{"Text": "zzz')
    assert _good(rows) == [(1, {"Id": "1"}), (3, {"Id": "3"})]


def test_a_json_object_with_more_keys_than_the_column_limit_is_rejected() -> None:
    rows = _rows(
        b'{"a": "1", "b": {"c": "2", "d": "3"}}\n', "x.jsonl", limits=Limits(max_columns=2)
    )
    assert _bad(rows) == [(1, "more than 2 fields")]


def test_a_bom_before_the_first_json_line_is_fine() -> None:
    rows = _rows(b'\xef\xbb\xbf{"Id": "1"}\n', "Events/part.jsonl")
    assert rows == [ParsedRow(1, {"Id": "1"}, None, "")]


# --- memory -----------------------------------------------------------------------------------


def _peak_while(
    read: Callable[[], Iterator[ParsedRow]],
) -> tuple[int, ParsedRow | None, int]:
    """Rows counted, the last row, and the peak of memory allocated from the call on."""
    tracemalloc.start()
    try:
        count, last = 0, None
        for row in read():
            count, last = count + 1, row
        return count, last, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_50_mb_csv_streams_in_bounded_memory() -> None:
    count = 50_000  # about 50 MB
    stream = io.BufferedReader(_Generated(_event_lines(count)))
    rows, last, peak = _peak_while(lambda: iter_rows(stream, "Events/part.csv"))
    assert rows == count
    assert last is not None and last.row == count
    assert last.values is not None and last.values["Signal.Export.Id"] == f"evt-{count - 1}"
    assert peak < 10 * 1024 * 1024


@pytest.mark.parametrize("path", ["Events/part.csv", "Events/part.jsonl"])
def test_a_30_mb_line_is_skipped_without_holding_it(path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"Id,Text\n1," if path.endswith(".csv") else b'{"Id": "1", "Text": "'
        for _ in range(480):
            yield b"x" * 65536
        yield b"\n2,after\n" if path.endswith(".csv") else b'"}\n{"Id": "2"}\n'

    stream = io.BufferedReader(_Generated(chunks()))
    limits = Limits(max_row_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        rows = list(iter_rows(stream, path, limits=limits))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(r.row, r.error) for r in rows] == [(1, "row larger than 1048576 bytes"), (2, None)]
    assert peak < 10 * 1024 * 1024


def test_a_lone_cr_is_data_once_the_first_line_ends_in_lf_or_crlf() -> None:
    assert _good(_rows(b"Id,Fk\r\n1,R-0\r01\r\n2,x\r\n")) == [
        (1, {"Id": "1", "Fk": "R-0\r01"}), (2, {"Id": "2", "Fk": "x"})
    ]
    assert _good(_rows(b"Id,Fk\n1,a\rb\n")) == [(1, {"Id": "1", "Fk": "a\rb"})]
    assert _good(_rows(b"Id,Fk\r1,a\r2,b\r")) == [(1, {"Id": "1", "Fk": "a"}), (2, {"Id": "2", "Fk": "b"})]


def test_a_gzip_expanding_past_the_file_limit_raises_after_the_rows_before() -> None:
    data = gzip.compress(b"Id\n" + b"".join(b"%d\n" % i for i in range(200_000)), mtime=0)
    rows: list[ParsedRow] = []
    with pytest.raises(PermanentError, match="after decompression"):
        rows.extend(iter_rows(io.BytesIO(data), "E/p.csv.gz", limits=Limits(max_file_bytes=100_000)))
    assert 1000 < len(rows) < 30_000
