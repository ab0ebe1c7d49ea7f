"""Erasing a customer (SPEC §11): suppress first, so no ingest brings anything back while the
records go; then the records, the measures and memberships; then the receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core.audiences.definitions import format_instant
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.records import AudienceResult
from shared.core.erasure.suppressions import new_salt, suppression_hash
from shared.core.errors import NotFound
from shared.core.ports import AudienceStore, ErasureStore, ProfileStore


def erase_customer(
    profiles: ProfileStore, erasures: ErasureStore, audience_store: AudienceStore,
    audiences: Audiences, customer_id: str, now: datetime,
) -> dict[str, Any]:
    """Everything Footprint holds about the customer, removed; the receipt. Erasing an erased
    customer again returns its receipt; an id never known is NotFound."""
    customer = profiles.get_customer(customer_id)
    if customer is None:
        done = next((r for r in erasures.erasures() if r["CustomerId"] == customer_id), None)
        if done is None:
            raise NotFound(f"no customer {customer_id!r}")
        return done
    keys = [(k.entity, k.key) for k in customer.alternate_keys]
    values = [k for _, k in keys]
    salt = erasures.erasure_salt(new_salt())
    erasures.suppress([suppression_hash(salt, v) for v in values])
    removed = erasures.erase_records(customer_id, keys, values)
    gone = AudienceResult(customer_id, None, (), None)  # leaves every segment, whatever the config
    removed["memberships"] = len(audience_store.save_audiences([gone], audiences.fingerprint, format_instant(now)))
    removed["changes"] = audience_store.anonymize_changes(customer_id)
    receipt = {"CustomerId": customer_id, "ErasedAt": format_instant(now), "Removed": removed}
    erasures.record_erasure(receipt)
    return receipt
