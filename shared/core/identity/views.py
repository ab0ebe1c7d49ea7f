"""Reads of identity: one visitor (its links, conflict and activities) and conflicting visitors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from shared.core.errors import NotFound
from shared.core.identity.links import Link
from shared.core.identity.winners import LATEST, candidates, is_conflict, winner
from shared.core.model import TimelineQuery
from shared.core.paging import bind_token, check_limit, query_scope, unbind_token
from shared.core.ports import LinkStore
from shared.core.queries import check_id

MAX_CONFLICTS = 10_000


def _identity(entity: str, links: Sequence[Link], rule: str) -> dict[str, Any]:
    """A visitor's standing with one customer entity: its candidate keys and the winner."""
    won = winner(links, rule)
    return {
        "Entity": entity,
        "OnConflict": rule,
        "Conflict": is_conflict(links),
        "Key": won.key if won else None,
        "LinkedAt": won.linked_at if won else None,
        "LinkSource": {"File": won.file, "Row": won.row} if won else None,
        "Candidates": [c.to_record() for c in candidates(links)],
    }


def _by_entity(links: Sequence[Link], rules: Mapping[str, str]) -> list[dict[str, Any]]:
    ordered = sorted(links, key=lambda link: link.customer_entity)
    return [
        _identity(entity, list(group), rules.get(entity, LATEST))
        for entity, group in groupby(ordered, key=lambda link: link.customer_entity)
    ]


def visitor_view(
    store: LinkStore, visitor_id: str, query: TimelineQuery, rules: Mapping[str, str]
) -> dict[str, Any]:
    """A visitor: its link (or conflict) per customer entity, and a page of its activities."""
    check_id(visitor_id, "visitor id")
    # Tokens are bound to the visitor and filters they continue, as the timeline's are.
    scope = query_scope("visitor", visitor_id, sorted(set(query.types)), query.since, query.until)
    if query.continuation:
        query = dataclasses.replace(query, continuation=unbind_token(query.continuation, scope))
    links = store.visitor_links(visitor_id)
    page = store.visitor_activities(visitor_id, query)
    if not links and not page.items and query.continuation is None:
        raise NotFound(f"no visitor {visitor_id!r}")
    return {
        "visitor": {"VisitorId": visitor_id, "Links": _by_entity(links, rules)},
        "activities": [a.to_record() for a in page.items],
        "continuation": bind_token(page.continuation, scope),
    }


def conflicts(
    store: LinkStore, rules: Mapping[str, str], limit: int | None = None
) -> list[dict[str, Any]]:
    """Visitors linked to more than one key (shared devices), with the winner of each."""
    if limit is not None:
        check_limit(limit, maximum=MAX_CONFLICTS)
    found = []
    for links in store.conflicting_links(limit):
        entity = links[0].customer_entity
        found.append({"VisitorId": links[0].visitor_id,
                      **_identity(entity, links, rules.get(entity, LATEST))})  # fmt: skip
    return found
