"""Suppressions: salted hashes of an erased customer's keys and visitor ids, never the values,
that every later ingest checks rows against; and which rejects an erasure must remove."""

from __future__ import annotations

import hashlib
import re
import secrets


def new_salt() -> str:
    return secrets.token_hex(32)


def suppression_hash(salt: str, value: str) -> str:
    """The keyed hash of one key or visitor id (trimmed, as the mapping compares them)."""
    key = bytes.fromhex(salt)[:64] if _is_hex(salt) else salt.encode()[:64]
    return hashlib.blake2b(value.strip().encode(), key=key, digest_size=16).hexdigest()


def _is_hex(text: str) -> bool:
    return bool(re.fullmatch(r"(?:[0-9a-f]{2})+", text))


def holds_value(excerpt: str, values: list[str]) -> bool:
    """Whether a reject's excerpt holds one of the values as a whole token: R-1 is in
    "R-1,Ada" but not in "R-10,Bo", so erasing one customer leaves another's rejects."""
    return any(
        re.search(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])", excerpt) for v in values if v
    )
