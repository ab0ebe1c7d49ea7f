"""CDM manifests: the tree of subManifests, and the entities, partitions and patterns declared."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from shared.core.cdm import patterns
from shared.core.cdm.csv_format import trait_csv
from shared.core.cdm.documents import MAX_DEPTH, EntityDocuments
from shared.core.cdm.json_files import Reader, objects, read_json, text_or_none
from shared.core.cdm.model import Entity, Manifest, Partition, PartitionPattern, folder_of
from shared.core.errors import NotFound, PermanentError
from shared.core.ports import FileSource

log = logging.getLogger(__name__)

INCREMENTAL_TRAIT = "is.partition.incremental"


class ManifestLoader:
    """Reads manifest trees: each document once, subManifests followed, attributes resolved."""

    def __init__(self, source: FileSource, reader: Reader | None = None) -> None:
        self.source = source
        self.read = reader or (lambda path: read_json(source, path))
        self.documents = EntityDocuments(source, self.read)
        self.loaded: set[str] = set()
        self.top = ""
        self.corpus_root = ""

    def load(self, path: str) -> Manifest:
        self.top, self.corpus_root = path, folder_of(path)
        self.documents.top, self.documents.corpus_root = self.top, self.corpus_root
        entities = self.manifest(path, ())
        return Manifest(path, folder_of(path), "manifest", tuple(entities))

    def manifest(self, path: str, chain: tuple[str, ...]) -> list[Entity]:
        if path in chain:
            cycle = " -> ".join((*chain, path))
            raise PermanentError(f"{self.top}: subManifests form a cycle: {cycle}")
        if len(chain) >= MAX_DEPTH:
            raise PermanentError(f"{self.top}: subManifests nested deeper than {MAX_DEPTH}")
        if path in self.loaded:
            return []  # reached twice through different parents: its entities count once
        data = self.manifest_document(path, is_sub=bool(chain))
        self.loaded.add(path)
        folder = folder_of(path)
        entities = [self.entity(decl, path, folder) for decl in objects(data, "entities", path)]
        for sub in objects(data, "subManifests", path):
            sub_path = self.location(sub.get("definition"), folder, path, "subManifest definition")
            entities += self.manifest(sub_path, (*chain, path))
        return entities

    def manifest_document(self, path: str, is_sub: bool) -> dict:
        try:
            return self.read(path)
        except NotFound:
            if not is_sub:
                raise
            raise PermanentError(f"{self.top}: subManifest {path} not found") from None

    def location(self, raw: Any, folder: str, where: str, what: str) -> str:
        """A manifest location as a source path; PermanentError when it leaves the source."""
        if not isinstance(raw, str) or not raw.strip():
            raise PermanentError(f"{where}: {what} is missing")
        namespace, path = patterns.split_namespace(raw.strip())
        if namespace not in (None, "local"):
            raise PermanentError(f"{where}: {what} {raw!r} points outside the export")
        try:
            return patterns.resolve_path(path, folder, self.corpus_root)
        except ValueError as e:
            raise PermanentError(f"{where}: {what}: {e}") from None

    def entity(self, decl: dict, where: str, folder: str) -> Entity:
        name = decl.get("entityName")
        if not isinstance(name, str) or not name:
            raise PermanentError(f"{where}: an entity has no entityName")
        schema = decl.get("entityPath") or decl.get("entitySchema")
        attributes = self.documents.declared_attributes(schema, folder, where) if schema else ()
        partitions = tuple(self.partitions(decl, where, folder))
        missing = self.documents.missing_document(schema, folder, where) if schema else None
        patterns = tuple(self.patterns(decl, where, folder))
        return Entity(name, attributes, partitions, patterns, missing)

    def partitions(self, decl: dict, where: str, folder: str) -> Iterator[Partition]:
        for key, incremental in (("dataPartitions", False), ("incrementalPartitions", True)):
            for item in objects(decl, key, where):
                traits = _traits(item.get("exhibitsTraits"))
                if not _filed_right(traits, incremental, where, key, item.get("location")):
                    continue
                location = self.location(item.get("location"), folder, where, "partition location")
                yield Partition(location, incremental, trait_csv(traits, where))

    def patterns(self, decl: dict, where: str, folder: str) -> Iterator[PartitionPattern]:
        for key, incremental in (
            ("dataPartitionPatterns", False),
            ("incrementalPartitionPatterns", True),
        ):
            for item in objects(decl, key, where):
                root = item.get("rootLocation")
                if not isinstance(root, str) or not root:
                    # The object model refuses the whole manifest for this too.
                    raise PermanentError(f"{where}: a partition pattern has no rootLocation")
                traits = _traits(item.get("exhibitsTraits"))
                if _filed_right(traits, incremental, where, key, root):
                    yield from self.pattern(item, root, traits, incremental, where, folder)

    def pattern(
        self, item: dict, root: str, traits: dict, incremental: bool, where: str, folder: str
    ) -> Iterator[PartitionPattern]:
        glob, regex = (
            text_or_none(item.get("globPattern")),
            text_or_none(item.get("regularExpression")),
        )
        try:
            patterns.compile_pattern(glob, regex)
        except ValueError as e:
            raise PermanentError(f"{where}: {e}") from None
        cleaned = root[:-1] if root.endswith("/") else root
        if not cleaned:
            # The object model resolves a rootLocation of '/' to no corpus path: no partitions.
            log.warning("%s: partition pattern with rootLocation '/' selects no file", where)
            return
        location = self.location(cleaned, folder, where, "rootLocation")
        yield PartitionPattern(location, glob, regex, incremental, trait_csv(traits, where))


def _filed_right(traits: dict, incremental: bool, where: str, key: str, name: Any) -> bool:
    """Whether an entry carries the incremental trait exactly when its list says it should.

    The object model drops an entry filed in the wrong list, so we do too, saying so.
    """
    if (INCREMENTAL_TRAIT in traits) == incremental:
        return True
    log.warning(
        "%s: %s entry %r ignored: is.partition.incremental %s",
        where,
        key,
        name,
        "missing" if incremental else "not allowed there",
    )
    return False


def _traits(items: Any) -> dict[str, dict[str, Any]]:
    """Trait name (lower case) -> its named arguments, from an exhibitsTraits list."""
    found: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        ref, args = (item, None) if isinstance(item, str) else (None, None)
        if isinstance(item, dict):
            ref, args = item.get("traitReference"), item.get("arguments")
        if isinstance(ref, dict):
            ref = ref.get("traitName")
        if isinstance(ref, str):
            found[ref.lower()] = {
                a["name"]: a.get("value")
                for a in (args if isinstance(args, list) else [])
                if isinstance(a, dict) and isinstance(a.get("name"), str)
            }
    return found
