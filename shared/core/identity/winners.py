"""Which key a visitor resolves to when linked to several (a shared device): onConflict."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from shared.core.identity.links import Link

LATEST, FIRST, NONE = "latest", "first", "none"
ON_CONFLICT = (LATEST, FIRST, NONE)


@dataclasses.dataclass(frozen=True)
class VisitorLink:
    """The winning link of a visitor: the key, when, and the row that made it."""

    visitor_id: str
    key: str
    linked_at: str
    file: str
    row: int

    def to_record(self) -> dict[str, Any]:
        return {
            "VisitorId": self.visitor_id,
            "LinkedAt": self.linked_at,
            "LinkSource": {"File": self.file, "Row": self.row},
        }


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One key a visitor was linked to: when first and last."""

    key: str
    first_linked: str
    last_linked: str

    def to_record(self) -> dict[str, Any]:
        return {"Key": self.key, "FirstLinkedAt": self.first_linked,
                "LastLinkedAt": self.last_linked}  # fmt: skip


def _earliest(link: Link) -> tuple[str, str, int]:
    return link.first_time, link.source_file, link.first_row


def _latest(link: Link) -> tuple[str, str, int]:
    return link.last_time, link.source_file, link.last_row


def winner(links: Iterable[Link], on_conflict: str = LATEST) -> VisitorLink | None:
    """The link one visitor's links (of one customer entity) resolve to under `on_conflict`:
    latest = greatest (time, SourceFile, SourceRow), first = least, none = only while there is
    just one key. A function of the set of links alone, so never of the order they came in."""
    links = list(links)
    if not links:
        return None
    if on_conflict == NONE and len({link.key for link in links}) > 1:
        return None
    if on_conflict == LATEST:
        best = max(links, key=_latest)
        return VisitorLink(best.visitor_id, best.key, *_latest(best))
    best = min(links, key=_earliest)
    return VisitorLink(best.visitor_id, best.key, *_earliest(best))


def candidates(links: Iterable[Link]) -> list[Candidate]:
    """Each key a visitor was linked to, with its first and last link time, by key."""
    spans: dict[str, tuple[str, str]] = {}
    for link in links:
        first, last = spans.get(link.key, (link.first_time, link.last_time))
        spans[link.key] = (min(first, link.first_time), max(last, link.last_time))
    return [Candidate(key, *spans[key]) for key in sorted(spans)]


def is_conflict(links: Iterable[Link]) -> bool:
    return len({link.key for link in links}) > 1
