"""Keeping measures and segments current, and reading them as of any time: the one path the
per-file function, the timer, the HTTP API and the commands evaluate customers by."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.core.audiences import side_by_side
from shared.core.audiences.definitions import format_instant
from shared.core.audiences.evaluator import Audiences, Evaluation
from shared.core.audiences.records import AudienceResult, MembershipChange, Overtaken
from shared.core.audiences.touched import Touched
from shared.core.errors import NotFound, TransientError
from shared.core.ports import AudienceStore, ChangeQueue, ProfileStore

log = logging.getLogger(__name__)

CHUNK = 200  # customers evaluated and saved together, unless the store says (chunk_of)
_OVERTAKEN_ROUNDS = 20  # evaluations of customers others keep saving at the same moment
# A file that touched this share of the customers (1/4) or more, on a store with one ordered
# read of every customer's inputs, is evaluated in one pass (side by side where that pays), not
# a chunk of customers at a time.
ORDERED_SHARE = 4
ORDERED_MIN = CHUNK  # and at least this many
# A file whose keys and visitors are this many, and as many as the customers or more (see
# ByFile.covers_all for a file's first ones), is evaluated as every customer in one pass: it
# reaches most of them (an event names a key and a visitor), and reading whom its references
# reach (a look-up per reference), then only their activities, would cost more than the pass's
# evaluations of the customers it misses. Below that share, reading only the customers reached
# costs less (SQLite's evaluation_inputs_of: on the bench's 1.1M-event store, a later
# 10k-event file reaching 7,367 of 20,000 customers is evaluated in 1.8 s that way, against
# 2.7 s as everyone).
EVERYONE_MIN = 2_000
EVERYONE_SHARE = 1
EVALUATED = "evaluated"  # the mark naming the definitions every customer was last evaluated by
# The mark of a worker that died or was stopped inside a file: every customer evaluated before
# that instant is evaluated again (see ByFile.suspect).
SUSPECT = "suspect"


def chunk_of(store: AudienceStore) -> int:
    """How many customers to evaluate and save together: CHUNK, or the store's own
    `evaluation_chunk` (Azure Tables groups each read and write by partition, so larger chunks
    are fewer requests)."""
    return getattr(store, "evaluation_chunk", CHUNK)


def evaluate_as_of(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, customer_id: str, at: datetime
) -> Evaluation:
    """One customer's measures and segments at `at`, from the store as it is."""
    customer = profiles.get_customer(customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return audiences.evaluate(store.activities_by_customer([customer_id])[customer_id], customer.attributes, at)


def evaluate_customers(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, ids: Iterable[str], at: datetime
) -> list[MembershipChange]:
    """Evaluate these customers at `at` and store the result: their current state when `at` is
    now. A customer that is gone leaves its segments."""
    if audiences.empty:
        return []
    ids, made = list(dict.fromkeys(ids)), []
    for _ in range(_OVERTAKEN_ROUNDS):
        with store.evaluating():
            results = [_result(c, found) for c, found in _evaluations(profiles, store, audiences, ids, at)]
            try:
                return made + store.save_audiences(results, audiences.fingerprint, format_instant(at))
            except Overtaken as overtaken:  # read again: another evaluation saw a later write
                made += overtaken.changes
                ids = overtaken.customer_ids
    raise TransientError(f"{len(ids)} customers kept being evaluated by others at the same moment")


def _result(customer_id: str, found: Evaluation | None) -> AudienceResult:
    if found is None:  # gone: it leaves its segments
        return AudienceResult(customer_id, None, (), None)
    return AudienceResult(customer_id, found.measures, found.segments, found.next_change)


def _evaluations(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, ids: Sequence[str], at: datetime
) -> Iterable[tuple[str, Evaluation | None]]:
    """Each customer's evaluation, their activities and attributes read in one go; None for
    one that is gone."""
    many = getattr(store, "evaluation_inputs_of", None)  # a query for many of them (SQLite)
    if many is not None:
        found = {c: (activities, attributes) for c, activities, attributes in many(ids, audiences.fields)}
        for customer_id in ids:
            inputs = found.get(customer_id)
            yield customer_id, None if inputs is None else audiences.evaluate(*inputs, at)
        return
    both = getattr(store, "inputs_of", None)  # a store that reads both in one go (Azure Tables)
    if both is not None:
        activities, attributes = both(ids)
    else:
        activities, attributes = store.activities_by_customer(ids), store.attributes_of(ids)
    for customer_id in ids:
        found = attributes[customer_id]
        if found is None:
            yield customer_id, None
        else:
            yield customer_id, audiences.evaluate(activities[customer_id], found, at)


def _drain(
    next_ids: Callable[[], Sequence[str]], evaluate: Callable[[Sequence[str]], object], deadline: float | None
) -> int:
    done = 0
    while (deadline is None or time.monotonic() < deadline) and (ids := next_ids()):
        evaluate(ids)
        done += len(ids)
    return done


def refresh(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime,
    deadline: float | None = None,
) -> int:
    """Evaluate every customer not evaluated under the current definitions (all of them after
    the measures or segments changed; new and gone ones otherwise), and every one evaluated
    before a worker died inside a file (SUSPECT). Resumable: what a crash or the deadline
    leaves is still stale next time. Returns how many were evaluated."""
    marks = store.marks()
    suspect = marks.get(SUSPECT) or None
    if audiences.empty or (marks.get(EVALUATED) == audiences.fingerprint and suspect is None):
        return 0  # new customers were evaluated as their files landed
    return _evaluate_stale(profiles, store, audiences, now, deadline, suspect)


def _evaluate_stale(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime,
    deadline: float | None, suspect: str | None = None,
) -> int:  # fmt: skip
    # Evaluated at `now`, a customer is current: never later than it (a clock set back).
    before = None if suspect is None else min(suspect, format_instant(now))
    done, first = 0, store.stale_customers(audiences.fingerprint, 1, before)
    if first and _ordered_inputs(store, audiences) is not None:
        # Most are stale (new definitions, a death): one ordered read from the first of them,
        # rather than a query per customer; what a deadline leaves is stale next time.
        done = _save_every(profiles, store, audiences, now, first[0], deadline)
    done += _drain(
        lambda: store.stale_customers(audiences.fingerprint, chunk_of(store), before),
        lambda ids: evaluate_customers(profiles, store, audiences, ids, now), deadline,
    )  # fmt: skip
    if not store.stale_customers(audiences.fingerprint, 1, before):
        store.set_mark(EVALUATED, audiences.fingerprint)
        # A later death than the one this pass answered stays marked.
        if suspect is not None and store.marks().get(SUSPECT) == suspect:
            store.set_mark(SUSPECT, "")
    return done


def keep_current(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime,
    deadline: float | None = None,
) -> tuple[int, int]:  # fmt: skip
    """The timer's part: everyone again if the definitions changed (or a worker died inside a
    file), then the customers whose windows moved on. Returns how many of each were evaluated."""
    return refresh(profiles, store, audiences, now, deadline), evaluate_due(profiles, store, audiences, now, deadline)


def refresh_all(profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime) -> int:
    """Evaluate every customer now, stale or not (`footprint segments refresh`), then those
    that are gone; returns how many customers were evaluated."""
    if audiences.empty:
        return 0
    return _save_every(profiles, store, audiences, now) + _evaluate_stale(profiles, store, audiences, now, None)


def _save_every(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime,
    start: str | None = None, deadline: float | None = None,
) -> int:  # fmt: skip
    """Evaluate and store every customer from `start` on, in id order, a chunk at a time, until
    the deadline; returns how many were."""
    done, results, stamp, chunk = 0, [], format_instant(now), chunk_of(store)
    for customer_id, found in _every_evaluation(profiles, store, audiences, now, start):
        results.append(_result(customer_id, found))
        if len(results) == chunk:
            store.save_audiences(results, audiences.fingerprint, stamp)
            done, results = done + len(results), []
            if deadline is not None and time.monotonic() >= deadline:
                return done
    if results:
        store.save_audiences(results, audiences.fingerprint, stamp)
        done += len(results)
    return done


def _ordered_inputs(
    store: AudienceStore, audiences: Audiences
) -> Callable[[str | None], Iterable[tuple[str, list[Any], dict[str, Any]]]] | None:
    """The store's one ordered read of every customer's inputs from a start (SQLite's
    `evaluation_inputs`: two scans in customer order, no query per customer), if it has one;
    its activities hold only the fields the measures read."""
    inputs = getattr(store, "evaluation_inputs", None)
    return None if inputs is None else lambda start: inputs(start, audiences.fields)


def _every_evaluation(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, at: datetime,
    start: str | None = None,
) -> Iterator[tuple[str, Evaluation | None]]:  # fmt: skip
    """Every customer's evaluation at `at` from `start` on, in id order: from one ordered read
    where the store offers it, else a chunk of customers at a time."""
    inputs = _ordered_inputs(store, audiences)
    if inputs is not None:
        for customer_id, activities, attributes in inputs(start):
            yield customer_id, audiences.evaluate(activities, attributes, at)
        return
    after = None
    while ids := store.customer_ids(after, chunk_of(store)):
        yield from _evaluations(profiles, store, audiences, [c for c in ids if start is None or c >= start], at)
        after = ids[-1]


def evaluate_due(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, now: datetime,
    deadline: float | None = None,
) -> int:
    """Evaluate the customers whose windowed measures or time conditions changed by `now` as
    time passed: only those, each read once."""
    if audiences.empty:
        return 0
    stamp = format_instant(now)
    return _drain(
        lambda: store.due_customers(stamp, chunk_of(store)),
        lambda ids: evaluate_customers(profiles, store, audiences, ids, now), deadline,
    )  # fmt: skip


def segments_as_of(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, at: datetime
) -> dict[str, list[str]]:
    """Every segment's members at `at`, in id order, evaluated afresh from the store (a full
    pass)."""
    members: dict[str, list[str]] = {s.name: [] for s in audiences.segment_configs}
    for customer_id, found in _every_evaluation(profiles, store, audiences, at):
        for segment in found.segments if found else ():
            members[segment].append(customer_id)
    return {name: sorted(ids) for name, ids in members.items()}


def published_mark(segment: str) -> str:
    return f"published:{segment}"


def publish_changes(store: AudienceStore, audiences: Audiences, queue: ChangeQueue, chunk: int = 100) -> int:
    """Put every change not yet put on the queue, in order, each segment from its mark on.

    At least once: the mark moves only after the queue took a chunk, so a crash or an outage
    in between puts that chunk again next time (consumers see duplicates, never a gap).
    Returns how many changes were put."""
    put = 0
    marks = store.marks()
    for segment in audiences.segment_configs:
        after = int(marks.get(published_mark(segment.name), "0"))
        while changes := store.membership_changes(segment.name, after, chunk):
            queue.put([orjson.dumps(c.to_record()).decode() for c in changes])
            after = changes[-1].seq
            store.set_mark(published_mark(segment.name), str(after))
            put += len(changes)
    return put


class ByFile:
    """The upkeep after each file (shared/core/audiences/touched.py): the customers a file
    touched are evaluated again at once, so they are current when the file is done."""

    def __init__(
        self, profiles: ProfileStore, store: AudienceStore, audiences: Audiences,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.profiles, self.store, self.audiences, self.clock = profiles, store, audiences, clock

    def reached(self, touched: Touched) -> set[str]:
        return self.store.customers_reached(touched)

    def catch_up(self, deadline: float | None) -> tuple[int, int]:
        return keep_current(self.profiles, self.store, self.audiences, self.clock(), deadline)

    def suspect(self) -> None:
        """A worker died or was stopped inside a file (its claim is taken over): what it wrote
        may have moved activities away from customers that only it knew of (another file's
        copy it replaced, rows it forgot) and that it did not evaluate again. Every customer
        evaluated before now is evaluated again by the timer (refresh): once per death,
        resumable, costing one full pass."""
        self.store.set_mark(SUSPECT, format_instant(self.clock()))

    def covers_all(self, references: int, partial: bool = False) -> bool:
        """Whether a file naming this many keys and visitors is evaluated as every customer in
        one pass (EVERYONE_MIN, EVERYONE_SHARE), its references then no longer noted or read.
        Asked in the middle of a file (`partial`), of the first MAX_REFERENCES it names, a
        quarter of the customers will do (ORDERED_SHARE): a file naming that many already names
        more, and a first load would otherwise read whom they reach every MAX_REFERENCES."""
        return self._many(references, EVERYONE_MIN, ORDERED_SHARE if partial else EVERYONE_SHARE)

    def evaluate(self, touched: Touched) -> None:
        now, done, everyone = self.clock(), 0, touched.everyone
        ids = sorted(touched.customers)
        try:
            everyone = everyone or self.covers_all(len(touched.keys) + len(touched.visitors))
            if everyone:
                self._evaluate_in_one_pass(ids, now, everyone=True)
                return
            ids = sorted(touched.customers | self.store.customers_reached(touched))
            if self._many(len(ids), ORDERED_MIN):
                self._evaluate_in_one_pass(ids, now)
                return
            chunk = chunk_of(self.store)
            while done < len(ids):
                evaluate_customers(self.profiles, self.store, self.audiences, ids[done : done + chunk], now)
                done += chunk
        except Exception as exc:
            # The file is done whatever happens here: its rows are in. What was not evaluated
            # is marked due now, for the timer's next run (evaluate_due), and after a pass of
            # everyone, everyone evaluated before now (suspect: the timer's refresh); should
            # even that fail (the store is down), those customers are current again after their
            # next file, a window's expiry or `footprint segments refresh`.
            left = ids[done:]
            log.warning("%d customers not evaluated after their file, left to the timer: %s",
                        len(left), exc)  # fmt: skip
            try:
                if everyone:
                    self.suspect()
                self.store.mark_due(left, format_instant(now))
            except Exception as again:
                log.warning("%d customers not marked due either: %s", len(left), again)

    def _many(self, found: int, least: int, share: int = ORDERED_SHARE) -> bool:
        """Whether `found` customers (or references to them) are many: at least `least`, and
        1/`share` of the customers or more; one pass pays."""
        count = getattr(self.store, "customer_count", None)
        return (
            found >= least and count is not None
            and _ordered_inputs(self.store, self.audiences) is not None
            and found * share >= count()
        )  # fmt: skip

    def _evaluate_in_one_pass(self, ids: Sequence[str], now: datetime, everyone: bool = False) -> None:
        """The customers of a file that touched many, from one ordered read from the first of
        them, stopping after the last (or such reads side by side, side_by_side.py); with
        `everyone`, every customer, `ids` those the file named. The reads and their saves in
        one `evaluating()` block (on SQLite one write transaction: no other write lands in
        between). The ones of `ids` it does not meet are gone: they leave their segments."""
        if self.audiences.empty:
            return
        wanted, stamp = set(ids), format_instant(now)
        with self.store.evaluating():
            results = []
            for customer_id, found in self._evaluations_of(ids, now, everyone):
                wanted.discard(customer_id)
                results.append(_result(customer_id, found))
                if len(results) == CHUNK:
                    self.store.save_audiences(results, self.audiences.fingerprint, stamp)
                    results = []
            if results:
                self.store.save_audiences(results, self.audiences.fingerprint, stamp)
            if wanted:
                evaluate_customers(self.profiles, self.store, self.audiences, sorted(wanted), now)

    def _evaluations_of(
        self, ids: Sequence[str], now: datetime, everyone: bool = False
    ) -> Iterator[tuple[str, Evaluation]]:
        """The evaluations of those of `ids` (sorted) that are not gone, or of every customer:
        side by side where that pays, else in this process, `ids` a chunk at a time as
        evaluate_customers reads them (only theirs, not every activity from the first on)."""
        found = side_by_side.evaluations(self.store, self.audiences, now, wanted=None if everyone else ids)
        if found is not None:
            with contextlib.closing(found):
                yield from found
            return
        if everyone:
            yield from _every_evaluation(self.profiles, self.store, self.audiences, now)
            return
        chunk = chunk_of(self.store)
        for i in range(0, len(ids), chunk):
            for customer_id, evaluation in _evaluations(self.profiles, self.store, self.audiences, ids[i : i + chunk], now):
                if evaluation is not None:
                    yield customer_id, evaluation
