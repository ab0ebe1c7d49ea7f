"""Files that appear whole or not at all: written through a buffer, committed on a clean
close, abandoned when the writer raised. Export targets hand these out."""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any

BUFFER_BYTES = 1024 * 1024


class StagedRaw(io.RawIOBase):
    """What a staged file writes through: `commit` makes it visible, `abandon` drops it."""

    def writable(self) -> bool:
        return True

    def commit(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        raise NotImplementedError


class StagedFile(io.BufferedWriter):
    """A buffered writer over a StagedRaw: leaving its `with` block cleanly commits it."""

    def __init__(self, raw: StagedRaw) -> None:
        super().__init__(raw, BUFFER_BYTES)
        self._staged = raw

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        if kind is None:
            self.flush()
            self._staged.commit()
        else:
            self._staged.abandon()
        return super().__exit__(kind, exc, tb)
