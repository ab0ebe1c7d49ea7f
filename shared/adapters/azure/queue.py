"""StorageQueue: membership changes put on an Azure Storage queue for activation (SPEC §9)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import LinearRetry, QueueClient

from shared.adapters.azure.errors import translated

# Few, quick retries: the change stays in the store's history and the next publish puts it.
CLIENT_OPTIONS = {
    "retry_policy": LinearRetry(backoff=1, random_jitter_range=0.5, retry_total=2),
    "connection_timeout": 5,
    "read_timeout": 30,
}


class StorageQueue:
    def __init__(self, client: QueueClient) -> None:
        self.client = client
        self._ready = False

    @classmethod
    def from_connection_string(cls, conn: str, name: str) -> StorageQueue:
        with translated(f"opening queue {name!r}"):
            return cls(QueueClient.from_connection_string(conn, name, **CLIENT_OPTIONS))

    def put(self, messages: Sequence[str]) -> None:
        """Each message, in order; raises TransientError when the service is unreachable."""
        with translated(f"writing queue {self.client.queue_name}"):
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self.client.create_queue()
                self._ready = True
            for message in messages:
                self.client.send_message(message)
