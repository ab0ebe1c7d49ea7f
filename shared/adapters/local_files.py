"""LocalFileSource: an export root on the local disk, paths relative to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shared.core.errors import NotFound, PermanentError
from shared.core.model import SourceFile


class LocalFileSource:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _full(self, path: str) -> Path:
        full = (self.root / path.lstrip("/")).resolve()
        if full != self.root and self.root not in full.parents:
            raise PermanentError(f"path {path!r} is outside the source folder")
        return full

    def _file(self, path: str, st: os.stat_result) -> SourceFile:
        # A local file has no ETag: modification time and size stand in for one.
        return SourceFile(path, f"{st.st_mtime_ns:x}-{st.st_size:x}", st.st_size)

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[SourceFile]:
        base = self._full(prefix) if prefix else self.root
        if not base.is_dir():
            return
        entries = sorted(base.rglob("*") if recursive else base.iterdir())
        for entry in entries:
            if entry.is_file():
                rel = entry.relative_to(self.root).as_posix()
                yield self._file(rel, entry.stat())

    def stat(self, path: str) -> SourceFile:
        full = self._full(path)
        try:
            st = full.stat()
        except FileNotFoundError:
            raise NotFound(f"no file {path!r}") from None
        if not full.is_file():
            raise NotFound(f"{path!r} is not a file")
        return self._file(path.lstrip("/"), st)

    def open(self, path: str) -> tuple[SourceFile, BinaryIO]:
        full = self._full(path)
        try:
            stream = full.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no file {path!r}") from None
        st = os.fstat(stream.fileno())
        return self._file(path.lstrip("/"), st), stream
