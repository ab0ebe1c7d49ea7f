"""Reads: the customer card, timeline pages, search, the activity preview and ledger health."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

from shared.core.errors import BadRequest, NotFound
from shared.core.mapping import to_utc
from shared.core.model import (
    COUNT_FIELDS,
    FAILED,
    QUARANTINED,
    RUNNING,
    STATUSES,
    TimelineQuery,
)
from shared.core.paging import (
    bind_token,
    check_limit,
    check_token,
    decode_position,
    encode_position,
    query_scope,
    scope_of,
    unbind_token,
)
from shared.core.ports import AudienceStore, Ledger, ProfileStore

_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,1024}$")
MAX_SEARCH_RESULTS = 100
MAX_PREVIEW = 10_000


def check_id(value: str, what: str = "customer id") -> str:
    if not _ID.match(value):
        raise BadRequest(f"{what} must be 1 to 1024 printable characters")
    return value


def parse_time(value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    moment = to_utc(value)
    if moment is None:
        raise BadRequest(f"{what} must be an ISO 8601 date or time, got {value[:40]!r}")
    return moment


def timeline_query(
    types: list[str] | tuple[str, ...] = (),
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    continuation: str | None = None,
    names: tuple[str, str] = ("from", "to"),
) -> TimelineQuery:
    """Validate timeline arguments as a caller gave them (CLI options, HTTP query); errors
    speak of the range's ends by the caller's `names` for them (--since, or from)."""
    for t in types:
        check_id(t, "type")
    query = TimelineQuery(
        tuple(types), parse_time(since, names[0]), parse_time(until, names[1]),
        check_limit(limit), continuation or None,
    )  # fmt: skip
    if query.continuation:
        check_token(query.continuation)  # refuse a bad token before any lookup
    if query.since and query.until and query.since >= query.until:
        raise BadRequest(f"{names[0]} must be earlier than {names[1]}")
    return query


def customer_profile(
    store: ProfileStore, customer_id: str, audiences: AudienceStore | None = None
) -> dict[str, Any]:
    """The one customer record every view shows: the customer, their activity counts and,
    given the store's audiences, their current Measures and Segments (SPEC §9)."""
    customer = store.get_customer(check_id(customer_id))
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    record = customer.to_record()
    record["ActivityCounts"] = store.activity_counts(customer_id)
    if audiences is not None:
        stored = audiences.stored_audiences([customer_id]).get(customer_id)
        record["Measures"] = stored.measures if stored else {}
        record["Segments"] = list(stored.segments) if stored else []
    return record


def customer_card(
    store: ProfileStore, customer_id: str, query: TimelineQuery, audiences: AudienceStore | None = None
) -> dict[str, Any]:
    """The customer, and one page of their timeline, newest first."""
    scope = query_scope("timeline", customer_id, sorted(set(query.types)), query.since,
                        query.until)  # fmt: skip
    if query.continuation:
        query = dataclasses.replace(query, continuation=unbind_token(query.continuation, scope))
    customer = customer_profile(store, customer_id, audiences)
    page = store.timeline(customer_id, query)
    return {
        "customer": customer,
        "activities": [a.to_record() for a in page.items],
        "continuation": bind_token(page.continuation, scope),
    }


def search(
    store: ProfileStore, text: str, limit: int | None = None, continuation: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of matching customers in CustomerId order, and the token of the next page."""
    text = text.strip()
    if not text:
        raise BadRequest("search text must not be empty")
    check_id(text, "search text")
    limit = check_limit(limit, 20, MAX_SEARCH_RESULTS)
    scope = scope_of(text)
    after = decode_position(continuation, "customers", scope, (str,))[0] if continuation else None
    found = store.search_customers(text, limit + 1, after)  # type: ignore[arg-type]
    page = found[:limit]
    more = len(found) > limit
    token = encode_position("customers", scope, (page[-1].customer_id,)) if more else None
    return [c.to_record() for c in page], token


def preview(
    store: ProfileStore,
    activity_type: str | None = None,
    unmatched: bool = False,
    limit: int | None = None,
    continuation: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Activities newest first, every one unless `limit`, and the token of the next page."""
    if activity_type is not None:
        check_id(activity_type, "type")
    if limit is not None:
        check_limit(limit, maximum=MAX_PREVIEW)
    scope = scope_of(activity_type, unmatched)
    after = (
        decode_position(continuation, "activities", scope, (str, str)) if continuation else None
    )
    found = store.list_activities(
        activity_type, unmatched, None if limit is None else limit + 1, after  # type: ignore[arg-type]
    )
    page = found if limit is None else found[:limit]
    token = None
    if limit is not None and len(found) > limit:
        last = page[-1]
        token = encode_position("activities", scope, (last.activity_time, last.activity_id))
    return [a.to_record() for a in page], token


def status(ledger: Ledger, store: ProfileStore) -> dict[str, Any]:
    """Ledger health: files by status (each file at its latest ETag), the sum of what each file
    counted when it was loaded, what is unmatched now, the last error."""
    latest: dict[str, Any] = {}
    for entry in ledger.entries():
        known = latest.get(entry.path)
        if known is None or (entry.started_at or "") >= (known.started_at or ""):
            latest[entry.path] = entry
    by_status = Counter(e.status for e in latest.values())
    totals = dict.fromkeys(COUNT_FIELDS, 0)
    for entry in latest.values():
        for name, value in entry.counts.to_record().items():
            totals[name] += value
    errors = [e for e in latest.values() if e.status in (FAILED, QUARANTINED) and e.error]
    last = max(errors, key=lambda e: e.finished_at or "", default=None)
    unmatched_now = store.count_unmatched_by_type()
    return {
        "files": {s: by_status.get(s, 0) for s in STATUSES},
        # The top-level counts are kept for existing readers; counts_when_loaded names them.
        **totals,
        "counts_when_loaded": totals,
        "unmatched_now": sum(unmatched_now.values()),
        "unmatched_now_by_activity": unmatched_now,
        "quarantined": sorted(e.path for e in latest.values() if e.status == QUARANTINED),
        # Who works on what, and until when their claims hold unless renewed.
        "running": [
            {"path": e.path, "holder": e.holder, "lease_until": e.lease_until}
            for e in sorted(latest.values(), key=lambda e: e.path) if e.status == RUNNING
        ],
        "last_error": (
            {"path": last.path, "error": last.error, "at": last.finished_at} if last else None
        ),
    }
