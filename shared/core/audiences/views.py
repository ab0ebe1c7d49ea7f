"""What the commands and the HTTP API show of measures and segments, in the --json shapes of
SPEC §9: segment sizes, members, one customer's measures, the change feed and its cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

from shared.core.audiences.definitions import format_instant, parse_instant
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.upkeep import evaluate_as_of, segments_as_of
from shared.core.errors import BadRequest, NotFound
from shared.core.paging import check_limit
from shared.core.ports import AudienceStore, ProfileStore

MAX_MEMBERS = 1000
MAX_CHANGES = 1000


def as_of(value: str | None, now: datetime, what: str = "--as-of") -> tuple[datetime, bool]:
    """The evaluation time a caller asked for (ISO 8601), or now; and whether it is now."""
    if not value:
        return now, True
    try:
        return parse_instant(value.replace("Z", "+00:00") if value.endswith("Z") else value), False
    except ValueError:
        raise BadRequest(f"{what} must be an ISO 8601 time, got {value[:40]!r}") from None


def _segment(audiences: Audiences, name: str) -> str:
    if audiences.segment(name) is None:
        known = ", ".join(s.name for s in audiences.segment_configs) or "none configured"
        raise NotFound(f"no segment {name!r} (segments: {known})")
    return name


def segment_list(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, at: datetime, now: bool
) -> list[dict[str, Any]]:
    sizes = store.segment_sizes() if now else {k: len(v) for k, v in segments_as_of(profiles, store, audiences, at).items()}
    return [{"Segment": s.name, "Description": s.description, "Members": sizes.get(s.name, 0)}
            for s in audiences.segment_configs]  # fmt: skip


def segment_members(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, name: str, at: datetime,
    now: bool, limit: int | None = None, continuation: str | None = None,
) -> dict[str, Any]:
    _segment(audiences, name)
    size = check_limit(limit, 100, MAX_MEMBERS)
    after = _decode(continuation, ["members", name, format_instant(at) if not now else None])
    if now:
        ids = store.segment_members(name, after, size + 1)
    else:
        ids = [c for c in segments_as_of(profiles, store, audiences, at)[name] if after is None or c > after][: size + 1]
    page, more = ids[:size], len(ids) > size
    members = []
    for customer_id in page:
        customer = profiles.get_customer(customer_id)
        keys = [k.to_record() for k in customer.alternate_keys] if customer else []
        members.append({"CustomerId": customer_id, "AlternateKeys": keys})
    token = _encode(["members", name, format_instant(at) if not now else None], page[-1]) if more else None
    return {"segment": name, "asOf": format_instant(at), "members": members, "continuation": token}


def customer_measures(
    profiles: ProfileStore, store: AudienceStore, audiences: Audiences, customer_id: str, at: datetime
) -> dict[str, Any]:
    found = evaluate_as_of(profiles, store, audiences, customer_id, at)
    return {"CustomerId": customer_id, "asOf": format_instant(at), "Measures": found.measures,
            "Segments": list(found.segments)}  # fmt: skip


def current_audience(store: AudienceStore, customer_id: str) -> dict[str, Any]:
    """What the customer record carries: the measures and segments kept current."""
    stored = store.stored_audiences([customer_id]).get(customer_id)
    return {"Measures": stored.measures if stored else {}, "Segments": list(stored.segments) if stored else []}


def segment_changes(
    store: AudienceStore, audiences: Audiences, name: str, since: str | None, limit: int | None = None
) -> dict[str, Any]:
    """The feed after a cursor, oldest first; `cursor` continues it (the same when nothing is
    new, so a poller keeps it)."""
    _segment(audiences, name)
    after = _decode(since, ["changes", name, None])
    seq = int(after) if after else 0
    found = store.membership_changes(name, seq, check_limit(limit, 100, MAX_CHANGES))
    last = found[-1].seq if found else seq
    return {"segment": name, "changes": [c.to_record() for c in found], "cursor": _encode(["changes", name, None], str(last))}


def _encode(bound: list[Any], position: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([*bound, position])).decode().rstrip("=")


def _decode(token: str | None, bound: list[Any]) -> str | None:
    """The position a token holds, refused unless it was made for this same query."""
    if not token:
        return None
    try:
        if len(token) > 2048:
            raise ValueError
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(raw, list) or raw[:-1] != bound or not isinstance(raw[-1], str):
            raise ValueError
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continuation or cursor is not valid for this query") from None
    return raw[-1]
