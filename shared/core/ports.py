"""The ports the services talk to; adapters satisfy them structurally."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Protocol

from shared.core.audiences.records import AudienceResult, MembershipChange, StoredAudience
from shared.core.audiences.touched import Touched
from shared.core.identity.links import Link
from shared.core.model import (
    Activity,
    Customer,
    CustomerRow,
    LedgerEntry,
    Page,
    Reject,
    SourceFile,
    TimelineQuery,
)


class FileSource(Protocol):
    """Files of an export, by '/'-separated path relative to the source's root."""

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[SourceFile]:
        """Files under folder `prefix` ('' for the root); only its direct files unless recursive."""
        ...

    def stat(self, path: str) -> SourceFile:
        """The file as it is now; raises NotFound."""
        ...

    def open(self, path: str) -> tuple[SourceFile, BinaryIO]:
        """A binary stream of the file and the version (ETag) actually being read."""
        ...


class ProfileStore(Protocol):
    """Activities, customers and rejects; idempotent writes, customer linking in either order."""

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
        links: Sequence[Link] = (),
        touched: Touched | None = None,
    ) -> int:
        """Upsert one batch; returns how many of `activities` have no customer yet. Given
        `touched`, the references of stored records another file's copy replaced are added
        to it (shared/core/audiences/touched.py).

        When two activities share an ActivityId the one with the greatest
        (SourceFile, SourceRow) wins, whatever the order of calls. `links` of one file version
        and identity (see Link) are merged with what is stored, earliest and latest kept.
        """
        ...

    def overlapping_files(self, path: str, keep_etag: str) -> list[str]:
        """Files to read again after `forget_file(path, keep_etag)`, because a record it removes
        may have a copy in them; empty when no other version of `path` left anything.

        A store keeps one copy of a record that several files hold. Each time one file's copy
        beats another's, whichever was written first, the store notes the overlap (winner,
        loser); the answer is every file those overlaps lead to from `path`, transitively.
        """
        ...

    def note_rereads(self, path: str, files: Sequence[str]) -> list[str]:
        """Note, durably, that `files` are to be read again because `path` changes; returns
        them with any noted for `path` before and not cleared: a worker that died before
        reading them left them to the next attempt at `path`."""
        ...

    def clear_rereads(self, path: str) -> None:
        """The files noted for `path` were read again."""
        ...

    def forget_file(self, path: str, keep_etag: str) -> Touched:
        """Remove what earlier versions (other ETags) of `path` wrote (links included), and, if
        there was any, the overlaps noted for `path` as a winner: reading the files
        `overlapping_files` named notes them again where they still hold. A link belongs to
        one file version alone, so forgetting it needs no overlaps. Returns the references
        of what it removed (shared/core/audiences/touched.py), for the upkeep."""
        ...

    def get_customer(self, customer_id: str) -> Customer | None: ...

    def activity_counts(self, customer_id: str) -> dict[str, int]: ...

    def timeline(self, customer_id: str, query: TimelineQuery) -> Page: ...

    def search_customers(self, text: str, limit: int, after: str | None = None) -> list[Customer]:
        """Matching customers in CustomerId order; only ids greater than `after` when given."""
        ...

    def list_activities(
        self,
        activity_type: str | None,
        unmatched: bool,
        limit: int | None,
        after: tuple[str, str] | None = None,
    ) -> list[Activity]:
        """Newest first by (ActivityTime, ActivityId); only those before `after` when given."""
        ...

    def list_rejects(
        self, limit: int | None, file: str | None = None, after: tuple[str, int] | None = None
    ) -> list[Reject]:
        """Rejects in (file, row) order, of one file when given; only those after `after`."""
        ...

    def count_unmatched(self) -> int: ...

    def count_unmatched_by_type(self) -> dict[str, int]:
        """Activities with no customer now, by ActivityType (types with none left out)."""
        ...

    def relink(self) -> int:
        """Link unmatched activities whose customer is now known; returns how many."""
        ...

    def close(self) -> None: ...


class LinkStore(Protocol):
    """Visitors' links to customer keys (SPEC §8); written by ProfileStore.write with the
    activities that make them, and used by every read that resolves a customer."""

    def use_conflict_rules(self, rules: Mapping[str, str]) -> None:
        """onConflict per customer entity (latest where none is given), for every read after."""
        ...

    def visitor_links(self, visitor_id: str) -> list[Link]:
        """Every link of one visitor, whatever the customer entity, by (entity, key, file)."""
        ...

    def conflicting_links(self, limit: int | None) -> list[list[Link]]:
        """The links of each visitor linked to more than one key of one customer entity, by
        (entity, visitor)."""
        ...

    def visitor_activities(self, visitor_id: str, query: TimelineQuery) -> Page:
        """A visitor's activities (VisitorId), resolved, newest first, paged like a timeline."""
        ...


class Ledger(Protocol):
    """Per-file processing records keyed by (path, ETag)."""

    def get(self, path: str, etag: str) -> LedgerEntry | None: ...

    def latest(self, path: str) -> LedgerEntry | None:
        """The most recently started entry of `path`, whatever its ETag."""
        ...

    def claim(
        self,
        path: str,
        etag: str,
        now: str,
        lease_until: str,
        force: bool = False,
        holder: str | None = None,
    ) -> LedgerEntry | None:
        """Mark (path, etag) running by `holder` and count an attempt; None when done (unless
        force) or held.

        Safe when several workers claim the same file at once: one wins.
        """
        ...

    def renew(self, entry: LedgerEntry, lease_until: str) -> bool:
        """Extend the lease of the claim `entry` (as `claim` returned it) to `lease_until`;
        False when the claim is no longer its holder's (finished, or taken over after it
        ran out). Safe against a concurrent claim: exactly one of them wins."""
        ...

    def record(self, entry: LedgerEntry) -> None:
        """Store the outcome of an attempt."""
        ...

    def entries(self, status: str | None = None) -> Iterator[LedgerEntry]: ...

    def latest_entries(
        self, status: str | None, limit: int, after: str | None = None
    ) -> list[LedgerEntry]:
        """The latest entry of each path (as `latest` picks it) in path order, only those with
        `status` when given, only paths greater than `after` when given; at most `limit`."""

    def awaiting_metadata(self, folder: str) -> Iterator[LedgerEntry]:
        """Entries marked awaits_metadata of files under `folder` ('' for all, else ending in
        '/'), by path: found through an index, whatever the size of the ledger."""
        ...


class ExportSource(Protocol):
    """Everything a store holds of customers and activities, streamed for an export."""

    def iter_customers(self) -> Iterator[Customer]:
        """Every customer, by CustomerId."""
        ...

    def iter_activities(self) -> Iterator[Activity]:
        """Every activity with its resolved customer, by ActivityId."""
        ...

    def iter_activity_cells(self) -> Iterator[Sequence[str]]:
        """Every activity as `activity_cells` makes its export row (all text), in any order:
        the export's fast path, which builds no Activity."""
        ...

    def activity_cell_parts(
        self, parts_for: Callable[[int], int]
    ) -> contextlib.AbstractContextManager[list[Callable[[], Iterable[Sequence[str]]]]]:
        """iter_activity_cells in parts that together hold every row once, each read on its
        own when called (in a forked child, by the export): `parts_for(n)` of them for n
        activities where the store can split its rows cheaply, else one (read it after the
        block). Parts whose reading begins inside the block read one snapshot; writers may
        wait while it is open, so leave it once each part has begun."""
        ...


class AudienceStore(Protocol):
    """Measures and segments kept current (SPEC §9): each customer's evaluation, the history of
    membership changes, and what a reader of that history has seen."""

    def customer_ids(self, after: str | None, limit: int) -> list[str]:
        """Customer ids in order, after `after`."""
        ...

    def evaluating(self) -> contextlib.AbstractContextManager[object]:
        """Around one evaluation's reads and its save: where the store can, no write lands in
        between (SQLite: one write transaction), so two workers evaluating the same customer
        cannot store the older reading last. Elsewhere it holds nothing."""
        ...

    def activities_by_customer(self, customer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every activity record that reaches each customer, ShowInTimeline or not."""
        ...

    def attributes_of(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Each customer's Attributes (as its record has them); None for one that is gone.
        A store may also offer `inputs_of(ids)`: both of these at once, from one read of what
        they share (Azure Tables' members and customer rows); evaluations use it then."""
        ...

    def stored_audiences(self, customer_ids: Sequence[str]) -> dict[str, StoredAudience]: ...

    def save_audiences(self, results: Sequence[AudienceResult], fingerprint: str, at: str) -> list[MembershipChange]:
        """Store the evaluations; record and return each membership change they make. A store
        that cannot hold writes off in `evaluating()` may raise records.Overtaken for the
        customers another save reached first since the block began reading them."""
        ...

    def due_customers(self, now: str, limit: int) -> list[str]:
        """Customers whose next change is at or before `now`."""
        ...

    def mark_due(self, customer_ids: Sequence[str], at: str) -> None:
        """Make these customers due at `at` (their evaluation after a file failed)."""
        ...

    def customers_reached(self, touched: Touched) -> set[str]:
        """The customers `touched`'s references reach now: the customer of each key and row
        key; the customer of every key each visitor is linked to; and, for each row key, those
        of the visitors of the activities with that key."""
        ...

    def stale_customers(self, fingerprint: str, limit: int, before: str | None = None) -> list[str]:
        """Customers never evaluated, or evaluated under other definitions (or, given `before`,
        at an earlier instant), or gone since."""
        ...

    def segment_sizes(self) -> dict[str, int]: ...

    def segment_members(self, segment: str, after: str | None, limit: int) -> list[str]: ...

    def membership_changes(self, segment: str, after: int, limit: int) -> list[MembershipChange]:
        """The segment's history after `after` (a MembershipChange.seq), oldest first."""
        ...

    def anonymize_changes(self, customer_id: str) -> int:
        """Keep the customer's history entries without the customer (erasure); how many."""
        ...

    def iter_measures(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every evaluated customer's current measures, (CustomerId, {name: value}), streamed."""
        ...

    def iter_memberships(self) -> Iterator[tuple[str, str, str]]:
        """Every current membership, (Segment, CustomerId, entered at), streamed."""
        ...

    def marks(self) -> dict[str, str]:
        """Small named values the upkeep keeps: the definitions last evaluated in full, and how
        far each segment's changes were put on the activation queue."""
        ...

    def set_mark(self, name: str, value: str) -> None: ...


class ChangeQueue(Protocol):
    """Where membership changes go for activation: a Storage queue in Azure."""

    def put(self, messages: Sequence[str]) -> None:
        """Each message, in order; raises TransientError when it could not."""
        ...


class ErasureStore(Protocol):
    """What an erasure removes and leaves behind (SPEC §11): the records reaching a customer,
    the suppressions later ingests honour, and receipts that hold no personal data."""

    def erasure_salt(self, proposed: str) -> str:
        """The store's salt: `proposed` when the store had none yet, else the one it keeps."""
        ...

    def suppress(self, hashes: Sequence[str]) -> None: ...

    def suppressions(self) -> frozenset[str]: ...

    # Each removal is safe to run again, and says how many it removed.
    def erase_activities(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        """Activities whose foreign key is one of `keys` (customer entity, key), and every
        activity of one of `visitors`: anonymous, signed in under any key, keyless."""
        ...

    def erase_rejects(self, values: Sequence[str]) -> int:
        """Rejects whose excerpt holds one of `values` as a whole token."""
        ...

    def erase_links(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        """Every link of one of `visitors`, and every link to one of `keys`."""
        ...

    def erase_customer_rows(self, customer_id: str) -> int: ...

    def record_erasure(self, receipt: dict[str, Any]) -> None: ...

    def erasures(self) -> list[dict[str, Any]]:
        """Every receipt, oldest first."""
        ...
