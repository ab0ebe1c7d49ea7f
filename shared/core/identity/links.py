"""Links: a visitor seen with a customer key, as data with lineage, one record per file version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def is_placeholder(value: str, placeholders: frozenset[str]) -> bool:
    return value.strip().casefold() in placeholders


def links_of(
    activities: Iterable[Activity], placeholders: Mapping[str, frozenset[str]]
) -> list[Link]:
    """The links a batch's activities make, one per (visitor, key, file version).

    An activity links its visitor to its foreign key when both are there and differ, and the
    key is no placeholder (its visitor id was checked when mapped). `placeholders` holds the
    ignoreValues of each activity type that has a visitor key.
    """
    found: dict[tuple, Link] = {}
    for a in activities:
        visitor, key, entity = a.visitor_id, a.activity_foreign_key, a.customer_entity
        if visitor is None or key is None or visitor == key or entity is None:
            continue
        if is_placeholder(key, placeholders.get(a.activity_type, frozenset())):
            continue
        link = Link(entity, visitor, key, a.source_file, a.source_etag, a.activity_time,
                    a.source_row, a.activity_time, a.source_row)  # fmt: skip
        known = found.get(link.identity)
        found[link.identity] = link if known is None else known.merged(link)
    return list(found.values())


def merge_links(links: Iterable[Link]) -> dict[tuple, Link]:
    """Records of the same file version merged, by identity."""
    merged: dict[tuple, Link] = {}
    for link in links:
        known = merged.get(link.identity)
        merged[link.identity] = link if known is None else known.merged(link)
    return merged
