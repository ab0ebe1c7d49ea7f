"""Erasing a customer (SPEC §11), in an order a crash anywhere leaves retryable: suppress
first, so no ingest brings anything back while the records go; then the activities, rejects
and links (the customer's visitors are found through the links, so they go after what the
visitors reach); the memberships; the receipt; the customer rows last, as a retry finds the
customer, and through it its keys and visitors, until they are gone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core.audiences.definitions import format_instant
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.records import AudienceResult
from shared.core.erasure.suppressions import salt_of, suppression_hash
from shared.core.errors import NotFound
from shared.core.ports import AudienceStore, ErasureStore, ProfileStore


def erase_customer(
    profiles: ProfileStore, erasures: ErasureStore, audience_store: AudienceStore,
    audiences: Audiences, customer_id: str, now: datetime,
) -> dict[str, Any]:
    """Everything Footprint holds about the customer, removed; the receipt. Erasing an erased
    customer again returns its receipt; an id never known is NotFound."""
    customer = profiles.get_customer(customer_id)
    done = next((r for r in erasures.erasures() if r["CustomerId"] == customer_id), None)
    if customer is None:
        if done is None:
            raise NotFound(f"no customer {customer_id!r}")
        return done
    keys = [(k.entity, k.key) for k in customer.alternate_keys]
    visitors = [v.visitor_id for v in customer.visitors]
    values = [k for _, k in keys] + visitors
    salt = salt_of(erasures)
    erasures.suppress([suppression_hash(salt, v) for v in values])
    removed = {
        "activities": erasures.erase_activities(keys, visitors),
        "rejects": erasures.erase_rejects(values),
        "links": erasures.erase_links(keys, visitors),
        "visitors": len(visitors),
    }
    gone = AudienceResult(customer_id, None, (), None)  # leaves every segment, whatever the config
    removed["memberships"] = len(audience_store.save_audiences([gone], audiences.fingerprint, format_instant(now)))
    removed["changes"] = audience_store.anonymize_changes(customer_id)
    # The receipt before the customer rows: a crash between the two finds the customer and
    # its receipt, finishes, and keeps that one receipt.
    receipt = done or {"CustomerId": customer_id, "ErasedAt": format_instant(now),
                       "Removed": {**removed, "customerRows": len(keys)}}  # fmt: skip
    if done is None:
        erasures.record_erasure(receipt)
    erasures.erase_customer_rows(customer_id)
    return receipt
