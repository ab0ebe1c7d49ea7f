"""Suppressions: salted hashes of an erased customer's keys and visitor ids, never the values,
that every later ingest checks rows against; and which rejects an erasure must remove."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from shared.core.errors import ConfigError
from shared.core.mapping import MappedBatch
from shared.core.ports import ErasureStore

# What a store keeps in place of its salt when the salt is a setting: a check of it, never it.
SETTING_MARK = "setting:"


def new_salt() -> str:
    return secrets.token_hex(32)


def salt_of(erasures: ErasureStore) -> str:
    """The salt suppressions are hashed with: the store's own, generated on first use."""
    kept = erasures.erasure_salt(new_salt())
    if kept.startswith(SETTING_MARK):  # without the setting, every erased id would come back
        raise ConfigError("setting FOOTPRINT_ERASURE_SALT: unset, but this store's erasures were salted with it")
    return kept


class SettingSalt:
    """An ErasureStore whose salt is a setting (FOOTPRINT_ERASURE_SALT). The store keeps a check
    of it, so that a worker with another salt, or none, refuses rather than lets erased ids in."""

    def __init__(self, inner: ErasureStore, salt: str) -> None:
        self.inner, self.salt = inner, salt
        self.mark = SETTING_MARK + hashlib.blake2b(salt.encode(), digest_size=16).hexdigest()

    def erasure_salt(self, proposed: str) -> str:
        if self.inner.erasure_salt(self.mark) != self.mark:
            raise ConfigError(
                "setting FOOTPRINT_ERASURE_SALT: not the salt this store's erasures were made with"
            )
        return self.salt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def suppression_hash(salt: str, value: str) -> str:
    """The keyed hash of one key or visitor id (trimmed, as the mapping compares them)."""
    return _hash(_key_of(salt), value)


def _key_of(salt: str) -> bytes:
    return bytes.fromhex(salt)[:64] if _is_hex(salt) else salt.encode()[:64]


def _hash(key: bytes, value: str) -> str:
    return hashlib.blake2b(value.strip().encode(), key=key, digest_size=16).hexdigest()


def _is_hex(text: str) -> bool:
    return bool(re.fullmatch(r"(?:[0-9a-f]{2})+", text))


def holds_value(excerpt: str, values: list[str]) -> bool:
    """Whether a reject's excerpt holds one of the values as a whole token: R-1 is in
    "R-1,Ada" but not in "R-10,Bo", so erasing one customer leaves another's rejects."""
    return any(
        re.search(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])", excerpt) for v in values if v
    )


# What separates the values in a reject's excerpt: CSV text, or a row as JSON.
_VALUES_APART = re.compile(r"""[\s,;|"'{}\[\]:\\]+""")


class Suppression:
    """The suppression set with its salt, loaded once per file: which rows of a batch are an
    erased customer's (their key or visitor hashes into the set), to be skipped."""

    _MAX_MEMO = 100_000

    def __init__(self, salt: str, hashes: frozenset[str]) -> None:
        self.salt, self.hashes = salt, hashes
        self._key = _key_of(salt)
        # A visitor or key comes back on row after row: each value is hashed once per file.
        self._memo: dict[str, bool] = {}

    def holds(self, value: str | None) -> bool:
        if not value:
            return False
        found = self._memo.get(value)
        if found is None:
            if len(self._memo) >= self._MAX_MEMO:
                self._memo.clear()
            found = self._memo[value] = _hash(self._key, value) in self.hashes
        return found

    def sift(self, batch: MappedBatch) -> int:
        """Drop the batch's suppressed activities, customer rows, rejects (whose excerpt holds a
        suppressed value) and links, in place; how many rows they came from."""
        holds, rows = self.holds, set()
        kept = []
        for a in batch.activities:
            if holds(a.activity_foreign_key) or holds(a.visitor_id):
                rows.add(a.source_row)
            else:
                kept.append(a)
        batch.activities = kept
        customers = []
        for c in batch.customers:
            if holds(c.key):
                rows.add(c.source_row)
            else:
                customers.append(c)
        batch.customers = customers
        rejects = []
        for r in batch.rejects:  # few: a row per reject hashes each of its excerpt's values
            if any(holds(value) for value in _VALUES_APART.split(r.excerpt)):
                rows.add(r.row)
            else:
                rejects.append(r)
        batch.rejects = rejects
        batch.links = {k: v for k, v in batch.links.items() if not (holds(k[1]) or holds(k[2]))}
        return len(rows)


def load_suppression(erasures: ErasureStore | None) -> Suppression | None:
    """The store's suppression, or None when nothing was ever erased: then no row is hashed."""
    if erasures is None:
        return None
    hashes = erasures.suppressions()
    return Suppression(salt_of(erasures), hashes) if hashes else None
