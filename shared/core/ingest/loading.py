"""Writing one file's rows into the store: parsed rows checked against the mapping, mapped in
batches (in a forked child for large local files), erased customers' rows dropped, rejects
capped, links merged across batches; the claim renewed between batches."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence

from shared.core import forked
from shared.core.erasure.suppressions import Suppression
from shared.core.errors import PermanentError
from shared.core.identity.links import Spans, links_of_spans, merge_spans
from shared.core.mapping import EntityMapping, MappedBatch
from shared.core.model import Counts, SourceFile
from shared.core.ports import ProfileStore
from shared.core.reading.records import ParsedRow
from shared.core.reading.rows import file_kind, iter_rows


def load_file(store, mapping, schema, file, stream, counts, options, beat, suppression=None) -> None:  # type: ignore[no-untyped-def]
    """Write a file's rows in batches, renewing the claim (`beat`) between them; a break in
    the file (truncated gzip, undecodable text) is raised once the rows before it are written.
    Large local files may be read in a child process (IngestOptions.read_in_child_from).
    Rows of an erased customer (`suppression`) are skipped."""

    def batches() -> Iterator[MappedBatch]:
        rows = _UntilBroken(
            iter_rows(stream, file.path, schema.csv, schema.columns, options.limits)
        )
        checked = _checked(iter(rows), mapping, file.path, schema.columns)
        yield from _batches(mapping, checked, file, options.batch_size)
        if rows.error is not None:
            raise rows.error

    threshold = options.read_in_child_from
    in_child = threshold is not None and file.size >= threshold and forked.available()
    links = LinkBuffer(store, file)
    cap = options.max_rejects_per_file
    # Closed at once on the way out, so an interrupted or failed load ends its reader child.
    with contextlib.closing(forked.batches_from_child(batches) if in_child else batches()) as made:
        try:
            for batch in made:
                _write(store, batch, counts, links, cap, suppression)
                if counts.rejected > cap:
                    # A row per reject would take hours and gigabytes for one garbage file.
                    raise PermanentError(
                        f"too many rejected rows (wrong mapping or not an export?): more than {cap}"
                    )
                beat()
        except PermanentError:
            links.flush()  # the rows before the break landed: so do their links
            raise
    links.flush()


class LinkBuffer:
    """A file's links, merged across its batches and written a few times per file rather than
    with every batch: a visitor signs in on page after page, and each write of a link costs
    about what an activity does. Bounded, so memory stays flat whatever the file's size."""

    MAX_LINKS = 20_000

    def __init__(self, store: ProfileStore, file: SourceFile) -> None:
        self.store, self.file = store, file
        self.spans: Spans = {}

    def add(self, spans: Spans) -> None:
        merge_spans(self.spans, spans)
        if len(self.spans) >= self.MAX_LINKS:
            self.flush()

    def flush(self) -> None:
        if self.spans:
            links = links_of_spans(self.spans, self.file.path, self.file.etag)
            self.store.write([], [], [], links)
            self.spans = {}


class _UntilBroken:
    """A file's rows up to where the file breaks (truncated gzip, undecodable text): the break
    is kept, to be raised once the rows read before it are written, so they still land."""

    def __init__(self, rows: Iterator[ParsedRow]) -> None:
        self.rows = rows
        self.error: PermanentError | None = None

    def __iter__(self) -> Iterator[ParsedRow]:
        try:
            yield from self.rows
        except PermanentError as exc:
            self.error = exc


def _checked(
    rows: Iterator[ParsedRow], mapping: EntityMapping, path: str, schema: Sequence[str] | None
) -> Iterator[ParsedRow]:
    """The rows, unless the file lacks a column the mapping needs (mapping.check_columns): a
    CSV file's columns are its header's (or the schema's), a JSON lines file's the schema's;
    JSON lines without a schema bring their fields row by row, so each row is checked alone."""
    if file_kind(path) != "csv":
        if schema:
            mapping.check_columns(schema)
        return rows
    before: list[ParsedRow] = []  # rows too broken to have columns, ahead of the first good one
    for row in rows:
        before.append(row)
        if row.values is not None:
            mapping.check_columns(row.values.keys())
            break
    return itertools.chain(before, rows)


def _batches(
    mapping: EntityMapping, rows: Iterable[ParsedRow], file: SourceFile, batch_size: int
) -> Iterator[MappedBatch]:
    rows = iter(rows)
    while True:
        batch = mapping.map_rows(itertools.islice(rows, batch_size), file)
        if not batch.rows:
            return
        yield batch


def _write(
    store: ProfileStore,
    batch: MappedBatch,
    counts: Counts,
    links: LinkBuffer,
    max_rejects: int | None = None,
    suppression: Suppression | None = None,
) -> None:
    """Write a batch, storing rejects only up to `max_rejects` for the file; all are counted.
    An erased customer's rows are dropped first, counted as suppressed."""
    if suppression is not None:
        counts.suppressed += suppression.sift(batch)
    rejects = batch.rejects
    if max_rejects is not None and counts.rejected + len(rejects) > max_rejects:
        rejects = rejects[: max(max_rejects - counts.rejected, 0)]
    counts.rows += batch.rows
    counts.filtered += batch.filtered
    counts.rejected += len(batch.rejects)
    links.add(batch.links)
    if batch.activities or batch.customers or rejects:
        counts.unmatched += store.write(batch.activities, batch.customers, rejects)
        counts.activities += len(batch.activities)
        counts.customers += len(batch.customers)
