"""Timeline pages: limits and opaque continuation tokens."""

from __future__ import annotations

import base64
import binascii
import re

import orjson

from shared.core.errors import BadRequest

DEFAULT_PAGE = 50
MAX_PAGE = 500
# What a token may carry: an ActivityTime as stored and an ActivityId (a 128-bit hex digest).
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_ACTIVITY_ID = re.compile(r"[0-9a-f]{32}")


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
