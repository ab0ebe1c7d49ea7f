"""Resolution: an activity's customer by its key, else by its visitor's winning link."""

from __future__ import annotations

from collections.abc import Callable

from shared.core.identity.winners import VisitorLink
from shared.core.model import Activity

KEY, VISITOR = "key", "visitor"

CustomerOfKey = Callable[[str, str], "str | None"]  # (entity, key) -> CustomerId
WinnerOf = Callable[[str, str], "VisitorLink | None"]  # (entity, visitor) -> winning link


def resolve(activity: Activity, customer_of: CustomerOfKey, winner_of: WinnerOf) -> Activity:
    """The activity with its CustomerId and IdentityPath as they are now (SPEC §8): the
    customer whose key is its foreign key; else the one its visitor's winning link names."""
    entity, key = activity.customer_entity, activity.activity_foreign_key
    if entity is not None and key is not None:
        customer_id = customer_of(entity, key)
        if customer_id is not None:
            return activity._replace(customer_id=customer_id, identity_path=KEY)
    visitor = activity.visitor_id
    if entity is not None and visitor is not None:
        link = winner_of(entity, visitor)
        customer_id = customer_of(entity, link.key) if link is not None else None
        if customer_id is not None:
            return activity._replace(customer_id=customer_id, identity_path=VISITOR)
    return activity._replace(customer_id=None, identity_path=None)
