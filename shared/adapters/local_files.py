"""Local folders: LocalFileSource reads an export root, LocalExportTarget writes an export."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from shared.adapters.staged import StagedFile, StagedRaw
from shared.core.errors import NotFound, PermanentError, TransientError
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
        if not recursive:  # the catalog's listing of a folder per file: keep it cheap
            yield from self._direct(base)
            return
        entries = sorted(base.rglob("*"))
        for entry in entries:
            if entry.is_file():
                rel = entry.relative_to(self.root).as_posix()
                yield self._file(rel, entry.stat())

    def _direct(self, folder: Path) -> Iterator[SourceFile]:
        """The files directly in `folder`, by name: os.scandir, without a Path per entry."""
        rel = folder.relative_to(self.root).as_posix()
        head = "" if rel == "." else rel + "/"
        with os.scandir(folder) as scan:
            entries = sorted((e for e in scan if e.is_file()), key=lambda e: e.name)
        for entry in entries:
            yield self._file(head + entry.name, entry.stat())

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


class LocalExportTarget:
    """An export written into a local folder; each file appears whole, by rename. Forked
    children may write it (a path and the files they open are all it holds)."""

    forkable = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def create(self, path: str) -> StagedFile:
        full = (self.root / path).resolve()
        if self.root not in full.parents:
            raise PermanentError(f"path {path!r} is outside the export folder")
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
            return StagedFile(_RenamedOnCommit(full))
        except OSError as exc:
            raise TransientError(f"cannot write export file {full}: {exc.strerror}") from None


class _RenamedOnCommit(StagedRaw):
    def __init__(self, final: Path) -> None:
        self._final = final
        self._part = final.with_name(final.name + ".part")
        self._file = self._part.open("wb")

    def write(self, data: Any) -> int:
        # Once abandoned, what the buffer still flushes goes nowhere.
        if self._file.closed:
            return len(data)
        try:
            return self._file.write(data)
        except OSError as exc:
            raise TransientError(f"cannot write export file {self._final}: {exc.strerror}") from None

    def commit(self) -> None:
        self._file.close()
        try:
            os.replace(self._part, self._final)
        except OSError as exc:
            self._part.unlink(missing_ok=True)
            raise TransientError(f"cannot write export file {self._final}: {exc.strerror}") from None

    def abandon(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)
