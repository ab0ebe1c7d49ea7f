"""What the stores keep of measures and segments: each customer's current evaluation and the
history of membership changes, with the cursor a reader continues from."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

ENTERED = "entered"
EXITED = "exited"


class MembershipChange(NamedTuple):
    """A customer entered or left a segment, as recorded at `at`; `seq` orders the history."""

    seq: int
    segment: str
    customer_id: str | None  # None once the customer was erased
    change: str
    at: str

    def to_record(self) -> dict[str, Any]:
        return {"Segment": self.segment, "CustomerId": self.customer_id, "Change": self.change, "At": self.at}


@dataclasses.dataclass(frozen=True)
class StoredAudience:
    """A customer's measures and segments as last evaluated, and when to evaluate again."""

    customer_id: str
    measures: dict[str, Any]
    segments: tuple[str, ...]
    next_change: str | None
    fingerprint: str
    evaluated_at: str


@dataclasses.dataclass(frozen=True)
class AudienceResult:
    """One customer's new evaluation for a store to save; `measures` None: the customer is
    gone, and leaves every segment."""

    customer_id: str
    measures: dict[str, Any] | None
    segments: tuple[str, ...]
    next_change: str | None


def membership_diff(
    customer_id: str, before: tuple[str, ...], after: tuple[str, ...], at: str
) -> list[tuple[str, str, str, str]]:
    """(segment, customer, change, at) for every segment entered or left, in name order."""
    old, new = set(before), set(after)
    changes = [(s, customer_id, ENTERED, at) for s in new - old]
    changes += [(s, customer_id, EXITED, at) for s in old - new]
    return sorted(changes)


class Overtaken(Exception):
    """A save refused for these customers: another save of theirs landed after their
    evaluation began reading (inside `evaluating()`), so what it read may predate a write that
    other one saw. Evaluate them again; the others' changes were saved and are in `changes`."""

    def __init__(self, customer_ids: list[str], changes: list[MembershipChange]) -> None:
        super().__init__(f"{len(customer_ids)} customers saved by another evaluation meanwhile")
        self.customer_ids, self.changes = customer_ids, changes
