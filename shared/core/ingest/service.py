"""Ingest and reconcile: the one code path every trigger and command uses to load files."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.audiences.touched import FileUpkeep, WatchedStore
from shared.core.cdm.catalog import Catalog, MetadataCache, is_manifest_name, is_metadata
from shared.core.config import Config, mapping_fingerprint
from shared.core.erasure.suppressions import load_suppression
from shared.core.errors import NotFound, PermanentError, StorageFull, TransientError
from shared.core.ingest.claims import (
    INTERRUPTED,
    ClaimLost,
    Lease,
    died_inside,
    held_message,
    iso,
    let_go,
    this_process,
)
from shared.core.ingest.loading import load_file
from shared.core.mapping import EntityMapping
from shared.core.model import (
    DONE,
    FAILED,
    QUARANTINED,
    RUNNING,
    SKIPPED,
    Counts,
    IngestReport,
    LedgerEntry,
    SourceFile,
)
from shared.core.ports import ErasureStore, FileSource, Ledger, ProfileStore
from shared.core.reading.records import Limits
from shared.core.reading.rows import file_kind

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class Ports:
    source: FileSource
    store: ProfileStore
    ledger: Ledger
    # Whose suppressions every load honours (SPEC §11); None: a store nothing is erased from.
    erasures: ErasureStore | None = None
    # Measures and segments kept current after each file (None when none are configured).
    upkeep: FileUpkeep | None = None


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    root: str = ""
    max_attempts: int = 5
    # How long a claim holds unless renewed; the worker renews it while it works on the file
    # (claims.Lease), so a dead worker's file is taken over within about this long.
    lease_seconds: float = 60
    holder: str = dataclasses.field(default_factory=this_process)
    retry_base_seconds: float = 30.0
    batch_size: int = 5000
    # Rejects stored per file; past it the file fails (a wrong mapping, or not an export).
    max_rejects_per_file: int = 10_000
    # Files of at least this many bytes are read and mapped in a forked child while this
    # process writes them (local loads into SQLite only: see shared/core/forked.py).
    read_in_child_from: int | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)
    # Parsed manifests and entity documents by ETag, for a run or a worker's life (None: each
    # file's catalog reads its own).
    metadata: MetadataCache | None = None
    clock: Callable[[], datetime] = _utc_now


def ingest_file(
    ports: Ports,
    config: Config,
    path: str,
    options: IngestOptions | None = None,
    *,
    force: bool = False,
    catalog: Catalog | None = None,
) -> IngestReport:
    """Load one file into the store, exactly once per ETag; the outcome lands in the ledger."""
    options = options or IngestOptions()
    catalog = catalog or Catalog(ports.source, options.root, cache=False, metadata=options.metadata)
    try:
        file, stream = ports.source.open(path)
    except NotFound as exc:
        return IngestReport(path, None, SKIPPED, reason=str(exc))
    except PermanentError as exc:  # e.g. a link out of the source: this file, not the run, fails
        return IngestReport(path, None, FAILED, error=str(exc))
    with contextlib.closing(stream):
        if is_metadata(path):
            return _note_metadata(ports, config, file, options)
        prior = ports.ledger.get(path, file.etag)
        remapped = prior is not None and _remapped(prior, config)
        if prior is not None and not force and not remapped and _settled(prior):
            return _report_of(prior, already=True)
        now = options.clock()
        lease = iso(now + timedelta(seconds=options.lease_seconds))
        if ports.upkeep is not None and died_inside(prior, iso(now)):
            # Before the claim: should this worker die too, the next one notes it again.
            ports.upkeep.suspect()
        entry = None
        try:
            entry = ports.ledger.claim(
                path, file.etag, iso(now), lease, force or remapped, options.holder
            )
            if entry is None:
                held = ports.ledger.get(path, file.etag)
                return IngestReport(path, None, SKIPPED, reason=held_message(held))
            return _attempt(ports, config, file, stream, entry, catalog, options)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM lets the file go at once, due again. Interrupted inside the
            # claim, the claim may have landed without our hearing of it: ours if it says so.
            entry = entry or _claimed_by_us(ports.ledger, path, file.etag, iso(now), options)
            if entry is not None:
                let_go(ports.ledger, entry, iso(options.clock()), INTERRUPTED)
            raise


def _claimed_by_us(
    ledger: Ledger, path: str, etag: str, started_at: str, options: IngestOptions
) -> LedgerEntry | None:
    with contextlib.suppress(Exception):
        found = ledger.get(path, etag)
        if found is not None and (found.status, found.holder, found.started_at) == (
            RUNNING, options.holder, started_at
        ):
            return found
    return None


def _attempt(ports, config, file, stream, entry, catalog, options) -> IngestReport:  # type: ignore[no-untyped-def]
    """Work on a claimed file; a worker that lost its claim leaves the entry to the new
    holder. An interrupt goes on up, to ingest_file, which lets the file go."""
    lease = Lease(ports.ledger, entry, options.lease_seconds, options.clock)
    try:
        return _work(ports, config, file, stream, entry, catalog, options, lease)
    except ClaimLost as exc:
        log.warning("%s", exc)
        return IngestReport(file.path, entry.entity, SKIPPED, error=str(exc), etag=entry.etag)


def _work(ports, config, file, stream, entry, catalog, options, lease) -> IngestReport:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    watched = _watched(ports)
    if watched is not None:  # files read again go through it too: one evaluation at the end
        ports = dataclasses.replace(ports, store=watched)
    counts = Counts()
    again: list[str] = []
    halt = None
    try:
        if file_kind(file.path) is None:
            raise PermanentError(f"not a CSV or JSON lines file: {file.path}")
        if file.size > options.limits.max_file_bytes:
            limit = options.limits.max_file_bytes
            raise PermanentError(f"file larger than {limit} bytes: {file.size}")
        # From here on a permanent failure may be the metadata's (no entity matches, no column
        # names, a wrong delimiter ...): new or changed metadata above the file retries it.
        entry.awaits_metadata = True
        schema = catalog.describe(file.path)
        entry.entity = schema.entity
        entry.mapping = mapping_fingerprint(config, schema.entity)
        mapping = EntityMapping(config, schema.entity)
        if mapping.is_empty:
            entry.status, entry.error = (
                SKIPPED,
                (f"entity {schema.entity!r} feeds no configured activity or customer source"),
            )
            # Unmapped by a manifest's say is final until the mapping changes; an entity
            # guessed from folder names may be another once a manifest describes the file.
            entry.awaits_metadata = schema.manifest is None
        else:
            # Noted before anything is forgotten: should this worker die before reading them
            # again, the next attempt at this file (the reconciler's) finds them noted.
            store = ports.store
            again = store.note_rereads(file.path, store.overlapping_files(file.path, file.etag))
            store.forget_file(file.path, file.etag)
            _load_unerased(ports, store, mapping, schema, file, stream, counts, options, lease, again)
            entry.status, entry.error = DONE, None
    except PermanentError as exc:
        entry.status, entry.error, entry.permanent = FAILED, str(exc), True
    except ClaimLost:
        raise
    except Exception as exc:  # storage faults and anything unforeseen: retry, then quarantine
        halt = _note_transient(entry, exc, options)
    if again and halt is None:  # whether or not the new version landed: the old one is gone
        try:
            _read_again(ports, config, again, file.path, options, catalog, lease)
        except ClaimLost:
            raise
        except Exception as exc:  # the notes stay: the next attempt reads them again
            halt = _note_transient(entry, exc, options)
    entry.awaits_metadata = entry.awaits_metadata and (
        entry.status == SKIPPED or (entry.status == FAILED and entry.permanent)
    )
    entry.counts = counts
    entry.finished_at = iso(options.clock())
    entry.duration_ms = int((time.monotonic() - started) * 1000)
    if entry.status != FAILED or entry.permanent:
        entry.not_before = None
    if watched is not None:
        # Before the outcome, so that a crash here leaves the file to be read (and its
        # customers evaluated) again; a fault of the evaluation fails nothing (ByFile).
        watched.settle()
    halt = _finish(ports.ledger, entry) or halt
    log.info(
        "%s %s entity=%s rows=%d activities=%d unmatched=%d filtered=%d rejected=%d "
        "customers=%d suppressed=%d ms=%d%s", entry.status, file.path, entry.entity, counts.rows,
        counts.activities, counts.unmatched, counts.filtered, counts.rejected, counts.customers,
        counts.suppressed, entry.duration_ms, f" error={entry.error}" if entry.error else "",
    )  # fmt: skip
    return dataclasses.replace(_report_of(entry), halt=halt)


EVERY_VERSION = ""  # no file's ETag: forget_file(path, EVERY_VERSION) forgets all of `path`
MAX_RELOADS = 3


def _load_unerased(ports, store, mapping, schema, file, stream, counts, options, lease, again) -> None:  # type: ignore[no-untyped-def]
    """Load the file without the rows of erased customers, even of one erased while it is read.

    An erasure suppresses first and then removes (shared/core/erasure/service.py): rows this
    worker wrote before the suppression are removed by it; rows written after it, under the
    suppression read at the start, would stay. So the suppression is read again once the rows
    are in: if it grew, the file's rows are forgotten (the files holding copies of them added
    to `again`, to be read again) and the file read anew under the new one."""
    suppression = load_suppression(ports.erasures)
    reopened: list[Any] = []
    try:
        for _ in range(MAX_RELOADS):
            load_file(store, mapping, schema, file, stream, counts, options, lease.beat, suppression)
            now = load_suppression(ports.erasures)
            if now is None or (suppression is not None and now.hashes <= suppression.hashes):
                return
            log.warning("%s: a customer was erased while it was read: read again without them", file.path)
            suppression = now
            noted = store.note_rereads(file.path, store.overlapping_files(file.path, EVERY_VERSION))
            again += [f for f in noted if f not in again]
            store.forget_file(file.path, EVERY_VERSION)
            found, stream = ports.source.open(file.path)
            reopened.append(stream)
            if found.etag != file.etag:  # a new version: it is ingested as a file of its own
                raise TransientError(f"{file.path} changed while it was read again after an erasure")
            for field in dataclasses.fields(counts):
                setattr(counts, field.name, 0)
        raise TransientError(f"{file.path}: customers kept being erased while it was read")
    finally:
        for opened in reopened:
            opened.close()


def _watched(ports: Ports) -> WatchedStore | None:
    """The store noting what this file touches; None without upkeep, or inside another
    file's work (a file read again), whose store notes it already."""
    if ports.upkeep is None or isinstance(ports.store, WatchedStore):
        return None
    return WatchedStore(ports.store, ports.upkeep)


def _finish(ledger: Ledger, entry: LedgerEntry) -> str | None:
    """Record the outcome; a full store may refuse even that: then the claim is left to run
    out (a lease) and the caller told to stop."""
    try:
        ledger.record(entry)
    except StorageFull as exc:
        log.warning("%s: outcome not recorded, its claim runs out by itself: %s", entry.path, exc)
        return str(exc)
    return None


def _read_again(
    ports: Ports,
    config: Config,
    files: list[str],
    changed: str,
    options: IngestOptions,
    catalog: Catalog,
    lease: Lease,
) -> None:
    """Read again the files holding copies of what `changed` may have dropped, then clear the
    note of them. A file done at its current version, or held by another worker, is written
    again without a ledger entry; a new version of it is ingested as any."""
    for path in files:
        lease.beat()
        report = ingest_file(ports, config, path, options, catalog=catalog)
        if report.status == SKIPPED:  # done already, or someone else has it and may be past it
            _replay(ports, config, path, options, catalog, lease)
        log.info("read %s again after %s changed: %s", path, changed, report.status)
    ports.store.clear_rereads(changed)


def _replay(
    ports: Ports, config: Config, path: str, options: IngestOptions, catalog: Catalog, lease: Lease
) -> None:
    """Write a file's rows again, its ledger entry left as it is (done, or its worker's): what
    it holds comes back where a forgotten version's copy beat it. A storage fault is raised,
    so that the notes of what to read again stay."""
    try:
        file, stream = ports.source.open(path)
    except (NotFound, PermanentError):
        return  # gone or out of reach: nothing of it to bring back
    with contextlib.closing(stream):
        if file_kind(path) is None or file.size > options.limits.max_file_bytes:
            return
        try:
            schema = catalog.describe(path)
            mapping = EntityMapping(config, schema.entity)
            suppression = load_suppression(ports.erasures)
            load_file(ports.store, mapping, schema, file, stream, Counts(), options, lease.beat, suppression)
        except PermanentError:
            pass  # a broken file: what precedes the break is written, as when it was read


def _note_transient(entry: LedgerEntry, exc: Exception, options: IngestOptions) -> str | None:
    """Record a failure retrying may cure. A full store is no fault of the file: due again at
    once, the attempt not counted, and its reason returned, for the caller to stop."""
    entry.error = f"{type(exc).__name__}: {exc}"[:1000]
    if isinstance(exc, StorageFull) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        entry.status, entry.not_before = FAILED, None
        entry.attempts = max(entry.attempts - 1, 0)
        return f"the store is full: {exc}"
    if entry.attempts >= options.max_attempts:
        entry.status = QUARANTINED
        return None
    entry.status = FAILED
    delay = min(options.retry_base_seconds * 2 ** (entry.attempts - 1), 3600.0)
    entry.not_before = iso(options.clock() + timedelta(seconds=delay))
    return None


def _settled(entry: LedgerEntry) -> bool:
    """Nothing more to do at this ETag unless someone forces it."""
    return entry.status in (DONE, SKIPPED, QUARANTINED) or (
        entry.status == FAILED and entry.permanent
    )


def _remapped(entry: LedgerEntry, config: Config) -> bool:
    """Whether a settled file was read under another mapping of its entity than `config`'s:
    its outcome (done, failed, skipped as unmapped) may differ now. An entry with no
    fingerprint (entity never known, or written before fingerprints) is taken as current."""
    if entry.entity is None or entry.mapping is None or not _settled(entry):
        return False
    return entry.mapping != mapping_fingerprint(config, entry.entity)


def _report_of(entry: LedgerEntry, already: bool = False) -> IngestReport:
    """The report of this call: `already` when it read nothing, the entry being an earlier
    call's, so its counts are not this call's (summing reports must not count a row twice)."""
    status, error, reason = entry.status, entry.error, None
    if status == SKIPPED:  # a skip is no error: the ledger's note is the reason
        error, reason = None, entry.error
    if already and status == DONE:
        status, reason = SKIPPED, f"already done at ETag {entry.etag}"
    counts = Counts() if already else entry.counts
    retryable = entry.status == FAILED and not entry.permanent
    return IngestReport(
        entry.path, entry.entity, status, counts, error, entry.etag, retryable, reason=reason
    )


def _note_metadata(
    ports: Ports, config: Config, file: SourceFile, options: IngestOptions
) -> IngestReport:
    """A manifest or entity document arrived or changed: retry files it may now describe."""
    if ports.ledger.get(file.path, file.etag) is not None:
        return IngestReport(
            file.path, None, SKIPPED, reason="CDM metadata, seen before", etag=file.etag
        )
    now = iso(options.clock())
    kind = "manifest" if is_manifest_name(file.path.rsplit("/", 1)[-1]) else "document"
    note = f"CDM {kind}, not data"
    ports.ledger.record(
        LedgerEntry(file.path, file.etag, SKIPPED, 1, error=note, started_at=now, finished_at=now)
    )
    folder = file.path.rsplit("/", 1)[0] + "/" if "/" in file.path else ""
    # Only the files under its folder that failed or were skipped for want of a schema, found
    # by the ledger's index: the work is that of the files metadata may change, and one
    # catalog describes them all against the metadata as it now is.
    catalog = Catalog(ports.source, options.root, cache=True, metadata=options.metadata)
    for path in _waiting(ports, folder):
        report = ingest_file(ports, config, path, options, force=True, catalog=catalog)
        log.info("retried %s after %s changed: %s", path, file.path, report.status)
    return IngestReport(file.path, None, SKIPPED, reason=note, etag=file.etag)


def _waiting(ports: Ports, folder: str) -> list[str]:
    """Files under `folder` whose current version awaits metadata; an older version's mark is
    cleared instead (its newer version has an entry of its own)."""
    waiting = []
    for entry in ports.ledger.awaiting_metadata(folder):
        try:
            current = ports.source.stat(entry.path).etag
        except (NotFound, PermanentError):
            current = None
        if current == entry.etag:
            waiting.append(entry.path)
        else:
            entry.awaits_metadata = False
            ports.ledger.record(entry)
    return waiting


def is_due(entry: LedgerEntry | None, now: str, config: Config | None = None) -> bool:
    """Whether the reconciler should (re)process a file whose ledger entry is `entry`; given
    the config, a file settled under another mapping of its entity is due too."""
    if entry is None:
        return True
    if entry.status in (FAILED, RUNNING) and not entry.permanent:
        return (entry.not_before or "") <= now
    return config is not None and _remapped(entry, config)
