"""A canonical picture of a store, read back through its ports, and how two pictures differ.

Activities (with their resolved customer), customers (with their visitors), rejects and the
links of every visitor are read the way any reader would, minus what legitimately differs
between two runs over the same export (ETags, update times), sorted and hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from shared.core.ports import ProfileStore

_RUN_SPECIFIC = {"SourceETag", "ETag", "UpdatedAt"}


def _canonical(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(record.items()) if k not in _RUN_SPECIFIC}


def activity_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """What makes two activities the same one: type and source event."""
    return record["ActivityType"], record["SourceEntity"], record["SourceActivityId"]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    activities: list[dict[str, Any]]
    customers: list[dict[str, Any] | None]
    rejects: list[dict[str, Any]]
    links: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Each customer's stored measures and segments, and each segment's members, as the upkeep
    # after each file left them (the history's order depends on the order files came in).
    audiences: list[Any] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, store: ProfileStore, customer_ids: Iterable[str]) -> Snapshot:
        activities = [_canonical(a.to_record()) for a in store.list_activities(None, False, None)]
        activities.sort(key=lambda r: (activity_key(r), orjson.dumps(r)))
        customers = []
        for customer_id in sorted(set(customer_ids)):
            found = store.get_customer(customer_id)
            customers.append(_canonical(found.to_record()) if found else None)
        rejects = sorted(
            (_canonical(r.to_record()) for r in store.list_rejects(None)),
            key=lambda r: (r["File"], r["Row"]),
        )
        visitors = sorted({a["VisitorId"] for a in activities if a["VisitorId"] is not None})
        links = [
            {k: v for k, v in link._asdict().items() if k != "source_etag"}
            for visitor in visitors for link in store.visitor_links(visitor)  # type: ignore[attr-defined]
        ]  # fmt: skip
        links.sort(key=orjson.dumps)
        return cls(activities, customers, rejects, links, _audiences(store, customer_ids))

    @property
    def digest(self) -> str:
        body = orjson.dumps([self.activities, self.customers, self.rejects, self.links, self.audiences])
        return hashlib.blake2b(body, digest_size=16).hexdigest()


def _audiences(store: ProfileStore, customer_ids: Iterable[str]) -> list[Any]:
    from shared import bootstrap

    kept = bootstrap.open_audiences(store)
    ids = sorted(set(customer_ids))
    stored = kept.stored_audiences(ids)
    state = [[c, stored[c].measures, list(stored[c].segments)] if c in stored else [c, None, None] for c in ids]
    members = [[s, kept.segment_members(s, None, 10**6)] for s in sorted(kept.segment_sizes())]
    return [*state, *members]


@dataclasses.dataclass(frozen=True)
class Difference:
    lost: int  # activities of the clean run missing here
    duplicated: int  # extra activities: the same event twice, or one the clean run lacks
    same: bool  # digests equal: every activity, customer and reject as in the clean run
    detail: str

    @property
    def ok(self) -> bool:
        return self.same and self.lost == 0 and self.duplicated == 0


def compare(clean: Snapshot, trial: Snapshot) -> Difference:
    want = Counter(activity_key(a) for a in clean.activities)
    got = Counter(activity_key(a) for a in trial.activities)
    lost = sum((want - got).values())
    duplicated = sum((got - want).values())
    same = clean.digest == trial.digest
    detail = ""
    if not same:
        detail = _first_difference(clean, trial)
    return Difference(lost, duplicated, same, detail)


def _first_difference(clean: Snapshot, trial: Snapshot) -> str:
    for name in ("activities", "customers", "rejects", "links", "audiences"):
        a, b = getattr(clean, name), getattr(trial, name)
        for x, y in zip(a, b, strict=False):
            if x != y:
                return f"{name} differ: clean {x} != trial {y}"
        if len(a) != len(b):
            return f"{name}: clean has {len(a)}, trial has {len(b)}"
    return "digests differ"
