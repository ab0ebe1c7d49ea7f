"""BlobCreated events: which ones name a finished export file Footprint should read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# Writes that leave a complete blob; CreateFile, PutBlock, AppendFile... leave a partial one.
FINISHED_WRITES = frozenset({"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"})
MAX_PATH = 1024


class Routing(NamedTuple):
    """Where an event leads: a path relative to the export prefix, or why it is skipped."""

    path: str | None
    etag: str | None
    reason: str


def _blob_of(subject: str) -> tuple[str, str] | None:
    # "/blobServices/default/containers/<container>/blobs/<name>"
    parts = subject.lstrip("/").split("/", 4)
    if (
        len(parts) < 5
        or parts[0] != "blobServices"
        or parts[2] != "containers"
        or parts[4][:6] != "blobs/"
    ):
        return None
    return parts[3], parts[4][len("blobs/") :]


def route_event(
    event_type: str, subject: str, data: Mapping[str, Any] | None, container: str, prefix: str
) -> Routing:
    """Accept only finished, non-empty writes of files under the export container/prefix.
    A file of a kind Footprint cannot read is accepted too: ingesting it records its failure
    in the ledger at once, as `footprint ingest` and the reconciler do."""
    if event_type != BLOB_CREATED:
        return Routing(None, None, f"not a BlobCreated event: {event_type}")
    data = data if isinstance(data, Mapping) else {}
    api = data.get("api")
    if api not in FINISHED_WRITES:
        return Routing(None, None, f"unfinished write ({api})")
    size = data.get("contentLength")
    if not isinstance(size, int) or size <= 0:
        return Routing(None, None, "empty blob")
    blob = _blob_of(subject or "")
    if blob is None:
        return Routing(None, None, f"subject is not a blob: {subject[:200]!r}")
    found_container, name = blob
    if found_container != container:
        return Routing(None, None, f"other container {found_container!r}")
    base = prefix.strip("/")
    if base and not name.startswith(base + "/"):
        return Routing(None, None, f"outside prefix {base!r}")
    path = name[len(base) + 1 :] if base else name
    if len(path) > MAX_PATH or not path or path.endswith("/"):
        return Routing(None, None, "not a file path")
    etag = data.get("eTag")
    return Routing(path, str(etag).strip('"') if etag else None, f"{api} of {size} bytes")
