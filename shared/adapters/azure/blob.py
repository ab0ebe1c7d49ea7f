"""Blob containers: BlobFileSource streams an export root, BlobExportTarget writes an export."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from azure.core.exceptions import AzureError
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobPrefix,
    BlobProperties,
    ContainerClient,
    LinearRetry,
)

from shared.adapters.azure.errors import error_of, translated
from shared.adapters.staged import StagedFile, StagedRaw
from shared.core.errors import TransientError
from shared.core.model import SourceFile

RequestHook = Callable[[Any], None]  # called with the SDK's PipelineRequest
# Each ranged GET briefly costs about 9x its size: the SDK joins `list(body)`, and `list`
# reserves one pointer per byte of the body's advertised length. 1 MiB keeps that near 10 MB.
CHUNK_BYTES = 1024 * 1024
# Few, quick retries: the Functions runtime and the ledger retry a failed file later, and a
# worker stuck in the SDK's default back-off (minutes) would blow the function timeout.
CLIENT_OPTIONS = {
    "retry_policy": LinearRetry(backoff=1, random_jitter_range=0.5, retry_total=2),
    "connection_timeout": 5,
    "read_timeout": 60,
    # Bounded memory: one range at a time, not the SDK's default 32 MiB first range.
    "max_single_get_size": CHUNK_BYTES,
    "max_chunk_get_size": CHUNK_BYTES,
}


class BlobFileSource:
    def __init__(self, container: ContainerClient, prefix: str = "") -> None:
        """`container` should come from `from_connection_string` (or use CLIENT_OPTIONS)."""
        self.container = container
        self.prefix = prefix.strip("/")
        self._base = f"{self.prefix}/" if self.prefix else ""

    @classmethod
    def from_connection_string(
        cls, conn: str, container: str, prefix: str = "", *, on_request: RequestHook | None = None
    ) -> BlobFileSource:
        """`on_request` sees every HTTP attempt, retries included (tests count them)."""
        hook = {} if on_request is None else {"raw_request_hook": on_request}
        with translated(f"opening container {container!r}"):
            client = ContainerClient.from_connection_string(conn, container, **CLIENT_OPTIONS, **hook)
        return cls(client, prefix)

    def ensure_container(self) -> None:
        """Create the container if it is missing (a fresh Azurite for `footprint dev`)."""
        with translated(f"creating container {self.container.container_name!r}"):
            if not self.container.exists():
                self.container.create_container()

    def _where(self, path: str) -> str:
        return f"blob {self.container.container_name}/{self._base}{path.lstrip('/')}"

    def _file(self, props: BlobProperties) -> SourceFile:
        return SourceFile(props.name[len(self._base) :], _etag(props.etag), props.size)

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[SourceFile]:
        folder = prefix.strip("/")
        start = self._base + (f"{folder}/" if folder else "")
        with translated(f"listing {self.container.container_name}/{start}"):
            if recursive:
                items = self.container.list_blobs(name_starts_with=start, include=["metadata"])
            else:
                items = self.container.walk_blobs(start, include=["metadata"], delimiter="/")
            for item in items:
                if not isinstance(item, BlobPrefix) and not _is_folder(item):
                    yield self._file(item)

    def stat(self, path: str) -> SourceFile:
        name = self._base + path.lstrip("/")
        with translated(self._where(path)):
            props = self.container.get_blob_client(name).get_blob_properties()
        return SourceFile(path.lstrip("/"), _etag(props.etag), props.size)

    def open(self, path: str) -> tuple[SourceFile, BinaryIO]:
        """The blob as it is now; the SDK pins later chunks to the first one's ETag (If-Match)."""
        name = self._base + path.lstrip("/")
        with translated(self._where(path)):
            download = self.container.download_blob(name, max_concurrency=1)
        file = SourceFile(path.lstrip("/"), _etag(download.properties.etag), download.size)
        raw = _ChunkReader(download.chunks(), self._where(path))
        return file, io.BufferedReader(raw, buffer_size=256 * 1024)  # type: ignore[return-value]


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


def _is_folder(props: BlobProperties) -> bool:
    # Data Lake Storage Gen2 lists its directories as empty blobs marked hdi_isfolder.
    return (props.metadata or {}).get("hdi_isfolder") == "true"


class _ChunkReader(io.RawIOBase):
    """A read-only raw stream over a download's chunk iterator; holds one chunk at a time."""

    def __init__(self, chunks: Iterator[bytes], where: str) -> None:
        self._chunks = chunks
        self._where = where
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        while not self._chunk:
            try:
                self._chunk = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except AzureError as exc:
                # Mid-download, whatever went wrong (even a blob rewritten meanwhile, 412) is
                # worth another attempt at the blob as it will be then.
                error = error_of(exc, f"reading {self._where}")
                raise TransientError(str(error)) from None
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


# Block blobs take up to 50,000 blocks: 8 MiB ones hold 390 GiB, far past the largest export.
BLOCK_BYTES = 8 * 1024 * 1024


class BlobExportTarget:
    """An export written into a container under a prefix; each blob is staged in blocks and
    appears whole when its block list is committed."""

    def __init__(self, container: ContainerClient, prefix: str = "") -> None:
        self.container = container
        self.prefix = prefix.strip("/")

    @classmethod
    def from_connection_string(cls, conn: str, container: str, prefix: str = "") -> BlobExportTarget:
        with translated(f"opening container {container!r}"):
            client = ContainerClient.from_connection_string(conn, container, **CLIENT_OPTIONS)
        target = cls(client, prefix)
        with translated(f"creating container {container!r}"):
            if not client.exists():
                client.create_container()
        return target

    def create(self, path: str) -> StagedFile:
        name = f"{self.prefix}/{path}" if self.prefix else path
        return StagedFile(_BlockWriter(self.container.get_blob_client(name)))


class _BlockWriter(StagedRaw):
    def __init__(self, blob: BlobClient) -> None:
        self._blob = blob
        self._buffer: bytearray | None = bytearray()
        self._blocks: list[BlobBlock] = []

    def write(self, data: Any) -> int:
        if self._buffer is None:  # abandoned: what the buffer still flushes goes nowhere
            return len(data)
        self._buffer += data
        if len(self._buffer) >= BLOCK_BYTES:
            self._stage()
        return len(data)

    def _stage(self) -> None:
        assert self._buffer is not None
        block_id = f"{len(self._blocks):08d}"
        with translated(f"writing blob {self._blob.blob_name}"):
            self._blob.stage_block(block_id, bytes(self._buffer))
        self._blocks.append(BlobBlock(block_id))
        self._buffer.clear()

    def commit(self) -> None:
        with translated(f"writing blob {self._blob.blob_name}"):
            if not self._blocks:  # small enough for one request
                self._blob.upload_blob(bytes(self._buffer), overwrite=True)
                return
            if self._buffer:
                self._stage()
            self._blob.commit_block_list(self._blocks)

    def abandon(self) -> None:
        # Uncommitted blocks are never visible, and the service drops them within a week.
        self._buffer = None
