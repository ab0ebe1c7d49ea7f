"""Parsed CDM metadata kept by ETag, for a run or a worker's life: read again only on change."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from shared.core.cdm.json_files import Reader, parse_json
from shared.core.cdm.model import Manifest
from shared.core.errors import NotFound
from shared.core.ports import FileSource

# The ETag each metadata file had when read (None: it was missing).
Versions = dict[str, str | None]


class MetadataCache:
    """Manifests and entity documents by (path, ETag), shared by the catalogs of a run or of a
    Functions worker. A manifest of thousands of entity documents is read and resolved once;
    again when the ETag of any file it was built from changed, or one it missed appeared.
    ETags come from the folder listings a catalog makes anyway, else from a stat."""

    def __init__(self, max_files: int = 50_000) -> None:
        self._docs: dict[str, tuple[str, dict]] = {}
        self._manifests: dict[str, tuple[Versions, Manifest]] = {}
        self._lock = threading.Lock()
        self._max_files = max_files

    def manifest(
        self, source: FileSource, path: str, known: Mapping[str, str],
        load: Callable[[Reader], Manifest],
    ) -> Manifest:  # fmt: skip
        """The manifest at `path` as `load(reader)` builds it, unless built before from files
        that are all unchanged. `known`: ETags of files listed meanwhile."""
        hit = self._manifests.get(path)
        if hit is not None and all(_etag(source, p, known) == e for p, e in hit[0].items()):
            return hit[1]
        versions: Versions = {}

        def read(doc_path: str) -> dict:
            etag = versions[doc_path] = _etag(source, doc_path, known)
            if etag is None:
                raise NotFound(f"no file {doc_path!r}")
            return self.read(source, doc_path, etag)

        manifest = load(read)
        with self._lock:
            self._manifests[path] = (versions, manifest)
        return manifest

    def read(self, source: FileSource, path: str, etag: str) -> dict:
        """The document at `path` as it is at `etag`."""
        hit = self._docs.get(path)
        if hit is not None and hit[0] == etag:
            return hit[1]
        file, stream = source.open(path)
        doc = parse_json(path, stream)
        with self._lock:
            if len(self._docs) >= self._max_files:
                self._docs.clear()  # a bound, not a policy: metadata this large is rare
            self._docs[path] = (file.etag, doc)
        return doc


def _etag(source: FileSource, path: str, known: Mapping[str, str]) -> str | None:
    if path in known:
        return known[path]
    try:
        return source.stat(path).etag
    except NotFound:
        return None
