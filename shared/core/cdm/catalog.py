"""CDM folders: which manifest, entity, columns and CSV format describe a data file."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.core.cdm import patterns
from shared.core.cdm.json_files import Reader
from shared.core.cdm.manifests import ManifestLoader
from shared.core.cdm.metadata_cache import MetadataCache
from shared.core.cdm.model import (
    Attribute,
    Entity,
    FileSchema,
    Manifest,
    Partition,
    PartitionPattern,
    folder_of,
)
from shared.core.cdm.model_json import load_model_json
from shared.core.cdm.partitions import match_file, resolve_partitions
from shared.core.errors import PermanentError
from shared.core.ports import FileSource

# The public API: the modules behind it are free to change.
__all__ = [
    "Attribute",
    "Catalog",
    "Entity",
    "FileSchema",
    "Manifest",
    "MetadataCache",
    "Partition",
    "PartitionPattern",
    "inspect",
    "is_manifest_name",
    "is_metadata",
    "is_partition_folder",
    "load_manifest",
    "match_file",
    "resolve_partitions",
]

MANIFEST_SUFFIX = ".manifest.cdm.json"
_PARTITION_FOLDER = re.compile(r"^(\d+([-_.]\d+)*|[^=]+=.*)$")
_DATA_SUFFIX = re.compile(r"\.(csv|json|jsonl)(\.gz)?$", re.IGNORECASE)
_PART_NUMBER = re.compile(r"[-_.]?(part[-_]?)?\d+$", re.IGNORECASE)


def is_manifest_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(MANIFEST_SUFFIX) or base in ("default.cdm.json", "model.json")


def is_metadata(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.endswith(".cdm.json") or base == "model.json"


def load_manifest(source: FileSource, path: str, reader: Reader | None = None) -> Manifest:
    """The manifest or model.json at `path`; NotFound when it is missing."""
    path = path.strip("/")
    if path.rsplit("/", 1)[-1] == "model.json":
        return load_model_json(source, path, reader)
    return ManifestLoader(source, reader).load(path)


def is_partition_folder(name: str) -> bool:
    """A folder that partitions data by date or key (2021, 09, 2021-09-28, year=2021)."""
    return bool(_PARTITION_FOLDER.match(name))


def inspect(source: FileSource, root: str = "", label: str | None = None) -> dict:
    """The `footprint cdm inspect --json` document of the CDM folders under `root`; `label`
    names the source's root in messages (the folder a person gave)."""
    root = root.strip("/")
    tops = _top_manifests(source, root)
    if not tops:
        where = "/".join(p for p in (label, root) if p) or "."
        raise PermanentError(f"no CDM manifest or model.json in {where}")
    loader = ManifestLoader(source)
    records = []
    for path in tops:
        if path in loader.loaded:
            continue  # already read as another top manifest's subManifest
        manifest = (
            load_model_json(source, path) if path.endswith("model.json") else loader.load(path)
        )
        resolved = resolve_partitions(source, manifest)
        records += [_entity_record(e, resolved[e.name], root) for e in manifest.entities]
    return {"entities": records}


class Catalog:
    """Which entity, columns and CSV settings a data file has, from the nearest manifest."""

    def __init__(
        self,
        source: FileSource,
        root: str = "",
        cache: bool = True,
        metadata: MetadataCache | None = None,
    ) -> None:
        self._source = source
        self._root = root.strip("/")
        # A CLI run reads each manifest once; an event handler re-reads (manifests change),
        # but only the metadata files whose ETag changed since `metadata` last read them
        # (one cache per file source: it is keyed by path).
        self._cache = cache
        self._listings: dict[str, list[str]] = {}
        self._manifests: dict[str, Manifest] = {}
        self._metadata = metadata or MetadataCache()
        self._etags: dict[str, str] = {}  # of metadata files seen in this catalog's listings

    def describe(self, path: str) -> FileSchema:
        path = path.strip("/")
        if patterns.relative_to(path, self._root) is None:
            raise PermanentError(f"{path} is not under {self._root}")
        nearest = None
        for folder in _folders_up(folder_of(path), self._root):
            for manifest_path in self._manifest_paths(folder):
                manifest = self._manifest(manifest_path)
                nearest = nearest or manifest.path
                hit = match_file(manifest, path)
                if hit:
                    entity, csv = hit
                    columns = tuple(a.name for a in entity.attributes) or None
                    return FileSchema(entity.name, columns, csv, manifest.path)
        if nearest:
            raise PermanentError(f"no entity in {nearest} matches {path}")
        return FileSchema(_entity_by_convention(path, self._root), None, None, None)

    def _manifest_paths(self, folder: str) -> list[str]:
        if self._cache and folder in self._listings:
            return self._listings[folder]
        files = list(self._source.list(folder, recursive=False))
        self._etags.update((f.path, f.etag) for f in files if is_metadata(f.path))
        found = sorted((f.path for f in files if is_manifest_name(f.path)), key=_manifest_rank)
        if self._cache:
            self._listings[folder] = found
        return found

    def _manifest(self, path: str) -> Manifest:
        if self._cache and path in self._manifests:
            return self._manifests[path]
        manifest = self._metadata.manifest(
            self._source, path, self._etags, lambda read: load_manifest(self._source, path, read)
        )
        if self._cache:
            self._manifests[path] = manifest
        return manifest


def _top_manifests(source: FileSource, root: str) -> list[str]:
    found = [f.path for f in source.list(root, recursive=True) if is_manifest_name(f.path)]
    if not found:
        return []
    shallowest = min(p.count("/") for p in found)
    return sorted((p for p in found if p.count("/") == shallowest), key=_manifest_rank)


def _entity_record(entity: Entity, partitions: list[Partition], root: str) -> dict:
    return {
        "name": entity.name,
        "missingDocument": entity.missing_document,
        "attributes": [{"name": a.name, "dataType": a.data_type} for a in entity.attributes],
        "partitions": [
            {"location": patterns.relative_location(p.location, root), "incremental": p.incremental}
            for p in partitions
        ],
    }


def _entity_by_convention(path: str, root: str) -> str:
    """The entity of a file no manifest describes: its nearest folder that is not a date or
    key=value partition, else the file name without suffixes and part number."""
    folders = folder_of(path).split("/") if folder_of(path) else []
    inside = folders[len(root.split("/")) if root else 0 :]
    for name in reversed(inside):
        if not _PARTITION_FOLDER.match(name):
            return name
    root_name = root.rsplit("/", 1)[-1]
    if inside and root_name and not _PARTITION_FOLDER.match(root_name):
        return root_name
    stem = _DATA_SUFFIX.sub("", path.rsplit("/", 1)[-1])
    return _PART_NUMBER.sub("", stem) or stem


def _manifest_rank(path: str) -> tuple[str, int, str]:
    folder, _, name = path.rpartition("/")
    kind = 0 if name.endswith(MANIFEST_SUFFIX) else 1 if name == "default.cdm.json" else 2
    return folder, kind, name


def _folders_up(folder: str, root: str) -> Iterator[str]:
    """`folder`, then each folder above it up to and including `root`."""
    while True:
        yield folder
        if folder == root or not folder:
            return
        folder = folder_of(folder)
