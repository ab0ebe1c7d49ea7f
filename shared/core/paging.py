"""Paged lists: limits, the stores' cursors, and the opaque continuation tokens callers see,
each bound to the query it continues (the timeline's by bind_token, the other listings' by
encode_position)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

import orjson

from shared.core.errors import BadRequest

DEFAULT_PAGE = 50
MAX_PAGE = 500
# What a token may carry: an ActivityTime as stored and an ActivityId (a 128-bit hex digest).
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_ACTIVITY_ID = re.compile(r"[0-9a-f]{32}")
_SCOPE = re.compile(r"[0-9a-f]{16}")


def check_limit(limit: int | None, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}, got {limit}")
    return limit


def encode_cursor(activity_time: str, activity_id: str) -> str:
    """Where the next page starts: just after this (time, id) in newest-first order."""
    return base64.urlsafe_b64encode(orjson.dumps([activity_time, activity_id])).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, str]:
    if len(token) > 256:
        raise BadRequest("continuation token is not valid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        time, activity = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continuation token is not valid") from None
    if not (isinstance(time, str) and isinstance(activity, str)):
        raise BadRequest("continuation token is not valid")
    if not (_TIME.fullmatch(time) and _ACTIVITY_ID.fullmatch(activity)):
        raise BadRequest("continuation token is not valid")
    return time, activity


def query_scope(*parts: Any) -> str:
    """A digest of what a paged query asks for (list, customer, filters; not the page size):
    a token made for one query is refused by any other."""
    return hashlib.blake2b(orjson.dumps(parts), digest_size=8).hexdigest()


def bind_token(cursor: str | None, scope: str) -> str | None:
    """The token a caller gets for a store's cursor: the cursor and the query's scope."""
    if cursor is None:
        return None
    return _encode([*decode_cursor(cursor), scope])


def check_token(token: str) -> None:
    """Refuse a malformed token before any lookup."""
    _decoded(token)


def unbind_token(token: str, scope: str) -> str:
    """The store's cursor in a caller's token, if the token was made for this query."""
    time, activity, made_for = _decoded(token)
    if made_for != scope:
        raise BadRequest(
            "continuation token is for another query: use it with the customer and filters "
            "(type, from/since, to/until) of the page that gave it"
        )
    return encode_cursor(time, activity)


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decoded(token: str) -> tuple[str, str, str]:
    parts = _parts(token)
    if len(parts) != 3 or not _SCOPE.fullmatch(parts[2]):
        raise BadRequest("continuation token is not valid")
    time, activity = decode_cursor(_encode(parts[:2]))
    return time, activity, parts[2]


def _parts(token: str) -> list[str]:
    if len(token) > 256:
        raise BadRequest("continuation token is not valid")
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continuation token is not valid") from None
    if not (isinstance(parts, list) and all(isinstance(p, str) for p in parts)):
        raise BadRequest("continuation token is not valid")
    return parts


# Listings other than the timeline (activities, search, rejects, files) continue after the
# last item's position, and a token names its listing and the filters it was made under, so
# it continues only the query it came from.
MAX_POSITION_TOKEN = 4096
Position = tuple[str | int, ...]


def scope_of(*filters: object) -> str:
    """A short stand-in for the filters of a query, carried in its tokens."""
    return hashlib.blake2b(orjson.dumps(filters), digest_size=6).hexdigest()


def encode_position(listing: str, scope: str, position: Position) -> str:
    """Where the next page of `listing` under `scope` starts: just after `position`."""
    raw = orjson.dumps([listing, scope, *position])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str, listing: str, scope: str, shape: tuple[type, ...]) -> Position:
    """The position a token of `listing` carries; BadRequest for a forged, damaged or other
    query's token."""
    if len(token) > MAX_POSITION_TOKEN:
        raise BadRequest("continuation token is not valid")
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continuation token is not valid") from None
    if not (isinstance(value, list) and len(value) == len(shape) + 2 and value[0] == listing):
        raise BadRequest("continuation token is not valid")
    if value[1] != scope:
        raise BadRequest("continuation token belongs to another query: start again without it")
    parts = value[2:]
    if not all(type(v) is kind for v, kind in zip(parts, shape, strict=True)):
        raise BadRequest("continuation token is not valid")
    return tuple(parts)
