"""Azure SDK exceptions translated into Footprint's error kinds, with secrets kept out."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.core.errors import FootprintError, NotFound, PermanentError, TransientError

# Besides every 5xx: a timeout or throttling, after which the same request may succeed.
RETRYABLE_STATUS = frozenset({408, 429})
# The account refused our credentials (Storage answers 403, not always as an auth error).
AUTH_STATUS = frozenset({401, 403})
_SECRETS = re.compile(r"(AccountKey|SharedAccessSignature|sig|se|sv|sp)=[^;&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """The text without account keys or SAS signatures, in one line, cut to a readable length."""
    first = " ".join(str(text).split())
    return _SECRETS.sub(r"\1=***", first)[:300]


def error_of(exc: AzureError, what: str) -> FootprintError:
    """The Footprint error for an SDK exception raised while doing `what`."""
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(f"{what}: not found")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError(f"{what}: storage unreachable ({redact(exc.message or '')})")
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None) or type(exc).__name__
    detail = f"{what}: storage said {status} {code}"
    if isinstance(exc, ClientAuthenticationError) or status in AUTH_STATUS:
        # A rotated or wrong key is an operator's fix, never the file's fault: retry later.
        return TransientError(f"{detail} (check the storage connection setting)")
    permanent = status is not None and status < 500 and status not in RETRYABLE_STATUS
    if isinstance(exc, HttpResponseError) and permanent:
        return PermanentError(detail)
    return TransientError(detail)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise Footprint errors instead of SDK ones; the original is dropped, it may carry URLs."""
    try:
        yield
    except AzureError as exc:
        raise error_of(exc, what) from None
