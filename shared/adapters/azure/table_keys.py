"""Azure Table keys and values: any text made a safe, short key; long text split into parts."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from shared.core.errors import PermanentError

Entity = dict[str, Any]

# Enough partitions for the service to spread load, few enough that a batch of a few thousand
# rows still fills transactions of 100.
BUCKETS = 32
TEXT_PART = 30_000  # characters: a string property holds at most 64 KiB of UTF-16
MAX_ENTITY_BYTES = 900_000  # an entity must stay under 1 MiB
# Cosmos DB for Table caps a RowKey at 255 bytes; composite keys stay under it with this.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_COMPLEMENT = str.maketrans("0123456789abcdef", "fedcba9876543210")
_INT32 = range(-(2**31), 2**31)


def digest(*parts: str) -> str:
    """A 128-bit hex digest: a key part that is short and safe whatever the text."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def bucket(hex_digest: str) -> str:
    """One of BUCKETS partition keys, chosen by a digest."""
    return format(int(hex_digest[:4], 16) % BUCKETS, "02x")


def plain_key(text: str) -> str:
    """The text itself when it is a harmless key, else '~' + its digest ('~' starts no plain key).

    Keys may not hold / \\ # ? or control characters, and some are compared as URL parts.
    """
    return text if _PLAIN_KEY.fullmatch(text) else "~" + digest(text)


def descending(text: str) -> str:
    """A key part that sorts in the reverse order of `text` (code point order).

    Hex keeps the order of the UTF-8 bytes, complementing each digit reverses it, and the
    final '~' (above every hex digit) puts a longer text before its own prefix.
    """
    return text.encode().hex().translate(_COMPLEMENT) + "~"


def weight(entity: Entity) -> int:
    """About how many bytes the service counts for an entity (strings as UTF-16)."""
    return sum(
        len(name) * 2 + (len(value) * 2 if isinstance(value, str) else 8)
        for name, value in entity.items()
    )


def pack(entity: Entity) -> Entity:
    """Values the service accepts: long strings in parts, big integers as Int64."""
    packed: Entity = {}
    for name, value in entity.items():
        if name.startswith("@"):
            continue  # bookkeeping of ours, such as '@etag'
        if isinstance(value, str) and len(value) > TEXT_PART:
            packed[name] = value[:TEXT_PART]
            for index in range(1, (len(value) + TEXT_PART - 1) // TEXT_PART):
                packed[f"{name}__{index}"] = value[index * TEXT_PART : (index + 1) * TEXT_PART]
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
            packed[name] = EntityProperty(value, EdmType.INT64)
        else:
            packed[name] = value
    if weight(entity) > MAX_ENTITY_BYTES:
        size = weight(entity)
        raise PermanentError(f"a record of about {size} bytes is too large for Azure Tables")
    return packed


def unpack(entity: Any) -> Entity:
    """Plain values back from a service entity, with its ETag as '@etag'."""
    plain: Entity = {}
    for name, value in entity.items():
        if "__" in name:
            continue
        if isinstance(value, EntityProperty):
            value = value.value
        elif isinstance(value, str) and f"{name}__1" in entity:
            parts, index = [value], 1
            while f"{name}__{index}" in entity:
                parts.append(entity[f"{name}__{index}"])
                index += 1
            value = "".join(parts)
        plain[name] = value
    metadata = getattr(entity, "metadata", None)
    if metadata:
        plain["@etag"] = metadata.get("etag")
    return plain
