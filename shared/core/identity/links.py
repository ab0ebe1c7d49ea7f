"""Links: a visitor seen with a customer key, as data with lineage, one record per file version."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from shared.core.model import Activity


class Link(NamedTuple):
    """Visitor `visitor_id` seen with `key` (of `customer_entity`) in one version of one file:
    the earliest and latest such row. One record per file version rather than per row keeps
    links few (a visitor signs in on many pages) and makes a file's links its own, so a
    rewrite replaces them without touching any other file's."""

    customer_entity: str
    visitor_id: str
    key: str
    source_file: str
    source_etag: str
    first_time: str
    first_row: int
    last_time: str
    last_row: int

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        return self[:5]

    def merged(self, other: Link) -> Link:
        """Both records of one file version as one: order-independent (min and max)."""
        first = min((self.first_time, self.first_row), (other.first_time, other.first_row))
        last = max((self.last_time, self.last_row), (other.last_time, other.last_row))
        return self._replace(
            first_time=first[0], first_row=first[1], last_time=last[0], last_row=last[1]
        )


# (customer entity, visitor, key) -> [(first time, row), (last time, row)] of one file version
Spans = dict[tuple[str, str, str], list[tuple[str, int]]]


def spans_of(activities: Iterable[Activity]) -> Spans:
    """The links a batch's activities (of one file version) make, as spans of rows.

    An activity links its visitor to its foreign key when both are there and differ; neither is
    a placeholder (mapping saw to that). Plain tuples rather than Links, as this runs for every
    signed-in event.
    """
    spans: Spans = {}
    get = spans.get
    for a in activities:
        visitor, key = a[16], a[10]
        if visitor is None or key is None or visitor == key or a[15] is None:
            continue
        at = (a[5], a[14])
        identity = (a[15], visitor, key)
        span = get(identity)
        if span is None:
            spans[identity] = [at, at]
        elif at < span[0]:
            span[0] = at
        elif at > span[1]:
            span[1] = at
    return spans


def merge_spans(into: Spans, spans: Spans) -> None:
    for identity, (first, last) in spans.items():
        span = into.get(identity)
        if span is None:
            into[identity] = [first, last]
        else:
            if first < span[0]:
                span[0] = first
            if last > span[1]:
                span[1] = last


def links_of_spans(spans: Spans, file: str, etag: str) -> list[Link]:
    return [Link(e, v, k, file, etag, *first, *last) for (e, v, k), (first, last) in spans.items()]


def merge_links(links: Iterable[Link]) -> dict[tuple, Link]:
    """Records of the same file version merged, by identity."""
    merged: dict[tuple, Link] = {}
    for link in links:
        known = merged.get(link.identity)
        merged[link.identity] = link if known is None else known.merged(link)
    return merged
