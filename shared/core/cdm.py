"""CDM folders: manifests, entity documents and model.json, and which entity a data file is."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from shared.core import cdm_patterns as patterns
from shared.core.errors import NotFound, PermanentError
from shared.core.parsing import CsvFormat
from shared.core.ports import FileSource

log = logging.getLogger(__name__)

MAX_DEPTH = 32
# Manifests and entity documents are small; anything bigger is not metadata we can trust.
MAX_METADATA_BYTES = 32 * 1024 * 1024
MANIFEST_SUFFIX = ".manifest.cdm.json"
CSV_TRAIT = "is.partition.format.csv"
INCREMENTAL_TRAIT = "is.partition.incremental"
# Standard CDM libraries (cdm:/foundations.cdm.json ...) are not part of an export.
_LIBRARY_NAMESPACES = frozenset({"cdm"})


@dataclasses.dataclass(frozen=True)
class Attribute:
    name: str
    data_type: str | None


@dataclasses.dataclass(frozen=True)
class Partition:
    location: str  # relative to the source root, no leading '/'
    incremental: bool
    csv: CsvFormat | None  # None: nothing declared, CsvFormat() defaults apply
    # model.json only: the partition's URL, which files are matched against by path suffix.
    url: str | None = None


@dataclasses.dataclass(frozen=True)
class PartitionPattern:
    root_location: str  # relative to the source root
    glob_pattern: str | None
    regular_expression: str | None
    incremental: bool
    csv: CsvFormat | None


@dataclasses.dataclass(frozen=True)
class Entity:
    name: str
    attributes: tuple[Attribute, ...]
    partitions: tuple[Partition, ...]
    patterns: tuple[PartitionPattern, ...]


@dataclasses.dataclass(frozen=True)
class Manifest:
    path: str
    folder: str
    kind: str  # "manifest" | "model.json"
    entities: tuple[Entity, ...]  # including entities of followed subManifests


@dataclasses.dataclass(frozen=True)
class FileSchema:
    entity: str
    columns: tuple[str, ...] | None
    csv: CsvFormat | None
    manifest: str | None


def is_manifest_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(MANIFEST_SUFFIX) or base in ("default.cdm.json", "model.json")


def is_metadata(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.endswith(".cdm.json") or base == "model.json"


def load_manifest(source: FileSource, path: str) -> Manifest:
    """The manifest or model.json at `path`; NotFound when it is missing."""
    path = path.strip("/")
    if path.rsplit("/", 1)[-1] == "model.json":
        return _load_model_json(source, path)
    return _ManifestLoader(source).load(path)


def match_file(manifest: Manifest, path: str) -> tuple[Entity, CsvFormat | None] | None:
    """The entity whose partitions, then patterns, cover the data file at `path`."""
    path = path.strip("/")
    for entity in manifest.entities:
        for partition in entity.partitions:
            if _partition_covers(partition, manifest.folder, path):
                return entity, partition.csv
    for entity in manifest.entities:
        for pattern in entity.patterns:
            if patterns.pattern_matches(_regex(pattern), pattern.root_location, path):
                return entity, pattern.csv
    return None


def resolve_partitions(source: FileSource, manifest: Manifest) -> dict[str, list[Partition]]:
    """Entity name -> its partitions, patterns resolved against the files that exist.

    Like the object model: explicit partitions are kept whether or not their file exists, and
    a pattern adds each file below its root that it matches, once per location and kind.
    """
    listings: dict[str, list[str]] = {}

    def files(folder: str) -> list[str]:
        if folder not in listings:
            listings[folder] = [f.path for f in source.list(folder, recursive=True)]
        return listings[folder]

    resolved: dict[str, list[Partition]] = {}
    for entity in manifest.entities:
        found = resolved.setdefault(entity.name, [])
        found.extend(_pinned(p, manifest.folder, files) for p in entity.partitions)
        found.extend(_pattern_partitions(entity, files))
    return {name: _unique_sorted(found) for name, found in resolved.items()}


def inspect(source: FileSource, root: str = "") -> dict:
    """The `footprint cdm inspect --json` document of the CDM folders under `root`."""
    root = root.strip("/")
    tops = _top_manifests(source, root)
    if not tops:
        raise PermanentError(f"no CDM manifest or model.json in {root or '.'}")
    loader = _ManifestLoader(source)
    records = []
    for path in tops:
        if path in loader.loaded:
            continue  # already read as another top manifest's subManifest
        manifest = (
            _load_model_json(source, path) if path.endswith("model.json") else loader.load(path)
        )
        resolved = resolve_partitions(source, manifest)
        records += [_entity_record(e, resolved[e.name], root) for e in manifest.entities]
    return {"entities": records}


class Catalog:
    """Which entity, columns and CSV settings a data file has, from the nearest manifest."""

    def __init__(self, source: FileSource, root: str = "", cache: bool = True) -> None:
        self._source = source
        self._root = root.strip("/")
        # A CLI run reads each manifest once; an event handler re-reads (manifests change).
        self._cache = cache
        self._listings: dict[str, list[str]] = {}
        self._manifests: dict[str, Manifest] = {}

    def describe(self, path: str) -> FileSchema:
        path = path.strip("/")
        if patterns.relative_to(path, self._root) is None:
            raise PermanentError(f"{path} is not under {self._root}")
        nearest = None
        for folder in _folders_up(_folder(path), self._root):
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
        names = [f.path for f in self._source.list(folder, recursive=False)]
        found = sorted((p for p in names if is_manifest_name(p)), key=_manifest_rank)
        if self._cache:
            self._listings[folder] = found
        return found

    def _manifest(self, path: str) -> Manifest:
        if self._cache and path in self._manifests:
            return self._manifests[path]
        manifest = load_manifest(self._source, path)
        if self._cache:
            self._manifests[path] = manifest
        return manifest


# --- CDM manifests and entity documents ---------------------------------------------------


class _ManifestLoader:
    """Reads manifest trees: each document once, subManifests followed, attributes resolved."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.docs: dict[str, dict | None] = {}
        self.scopes: dict[str, list[str]] = {}
        self.loaded: set[str] = set()
        self.top = ""
        self.corpus_root = ""

    def load(self, path: str) -> Manifest:
        self.top, self.corpus_root = path, _folder(path)
        entities = self.manifest(path, ())
        return Manifest(path, _folder(path), "manifest", tuple(entities))

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
        folder = _folder(path)
        entities = [self.entity(decl, path, folder) for decl in _objects(data, "entities", path)]
        for sub in _objects(data, "subManifests", path):
            sub_path = self.location(sub.get("definition"), folder, path, "subManifest definition")
            entities += self.manifest(sub_path, (*chain, path))
        return entities

    def manifest_document(self, path: str, is_sub: bool) -> dict:
        try:
            return _read_json(self.source, path)
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
        attributes = self.declared_attributes(schema, folder, where) if schema else ()
        partitions = tuple(self.partitions(decl, where, folder))
        return Entity(name, attributes, partitions, tuple(self.patterns(decl, where, folder)))

    def partitions(self, decl: dict, where: str, folder: str) -> Iterator[Partition]:
        for key, incremental in (("dataPartitions", False), ("incrementalPartitions", True)):
            for item in _objects(decl, key, where):
                traits = _traits(item.get("exhibitsTraits"))
                if not _filed_right(traits, incremental, where, key, item.get("location")):
                    continue
                location = self.location(item.get("location"), folder, where, "partition location")
                yield Partition(location, incremental, _csv_format(traits, where))

    def patterns(self, decl: dict, where: str, folder: str) -> Iterator[PartitionPattern]:
        for key, incremental in (
            ("dataPartitionPatterns", False),
            ("incrementalPartitionPatterns", True),
        ):
            for item in _objects(decl, key, where):
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
            _text_or_none(item.get("globPattern")),
            _text_or_none(item.get("regularExpression")),
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
        yield PartitionPattern(location, glob, regex, incremental, _csv_format(traits, where))

    def declared_attributes(self, schema: Any, folder: str, where: str) -> tuple[Attribute, ...]:
        """The attributes of 'doc.cdm.json/Entity'; none when the document is not in the export."""
        if not isinstance(schema, str) or "/" not in schema.strip("/"):
            return ()
        doc, _, name = schema.rpartition("/")
        doc_path = self.document(doc, folder, where, strict=True)
        if doc_path is None:
            return ()
        return tuple(_first_by_name(self.entity_attributes(name, doc_path, 0)))

    def document(self, raw: str, folder: str, where: str, strict: bool) -> str | None:
        """The source path of an entity document or import; None when the export lacks it."""
        namespace, path = patterns.split_namespace(raw.strip())
        if namespace not in (None, "local"):
            if strict and namespace not in _LIBRARY_NAMESPACES:
                raise PermanentError(f"{where}: document {raw!r} points outside the export")
            return None
        try:
            for candidate in patterns.document_candidates(path, folder, self.corpus_root):
                if self.read_document(candidate) is not None:
                    return candidate
        except ValueError as e:
            raise PermanentError(f"{where}: document {raw!r}: {e}") from None
        return None

    def read_document(self, path: str) -> dict | None:
        if path not in self.docs:
            try:
                self.docs[path] = _read_json(self.source, path)
            except NotFound:
                self.docs[path] = None
            except PermanentError as e:
                raise PermanentError(f"{self.top}: {e}") from None
        return self.docs[path]

    def entity_attributes(self, name: str, doc_path: str, depth: int) -> list[Attribute]:
        if depth > MAX_DEPTH:
            raise PermanentError(f"{self.top}: entities extend each other deeper than {MAX_DEPTH}")
        found = self.find(doc_path, "entityName", name)
        if found is None:
            return []  # e.g. CdmEntity and other standard entities an export does not carry
        where, definition = found
        base = _reference_name(definition.get("extendsEntity"), "entityReference")
        inherited = self.entity_attributes(base, where, depth + 1) if base else []
        return inherited + self.attribute_items(definition.get("hasAttributes"), where, depth)

    def attribute_items(self, items: Any, doc_path: str, depth: int) -> list[Attribute]:
        found: list[Attribute] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if "attributeGroupReference" in item:
                ref = item["attributeGroupReference"]
                found += self.group_attributes(ref, doc_path, depth + 1)
            elif isinstance(item.get("name"), str) and "entity" not in item:
                # Entity attributes ({"entity": ...}) need CDM resolution guidance: not columns.
                found.append(Attribute(item["name"], _data_type(item)))
        return found

    def group_attributes(self, ref: Any, doc_path: str, depth: int) -> list[Attribute]:
        if depth > MAX_DEPTH:
            raise PermanentError(f"{self.top}: attribute groups nested deeper than {MAX_DEPTH}")
        if isinstance(ref, dict) and "members" in ref:
            return self.attribute_items(ref["members"], doc_path, depth)
        name = _reference_name(ref, "attributeGroupReference")
        found = self.find(doc_path, "attributeGroupName", name) if name else None
        if found is None:
            return []
        where, definition = found
        return self.attribute_items(definition.get("members"), where, depth)

    def find(self, doc_path: str, key: str, name: str) -> tuple[str, dict] | None:
        """The definition named `name` in the document or the ones it imports, nearest first."""
        name = name.rsplit("/", 1)[-1]
        for path in self.scope(doc_path):
            for definition in _objects_lenient(self.docs[path], "definitions"):
                if definition.get(key) == name:
                    return path, definition
        return None

    def scope(self, doc_path: str) -> list[str]:
        if doc_path not in self.scopes:
            self.scopes[doc_path] = self.imported(doc_path)
        return self.scopes[doc_path]

    def imported(self, doc_path: str) -> list[str]:
        """The document, then the ones it imports, transitively, nearest first."""
        order, queue, seen = [], [doc_path], {doc_path}
        while queue:
            path = queue.pop(0)
            order.append(path)
            for item in _objects_lenient(self.docs[path], "imports"):
                raw = item.get("corpusPath") or item.get("uri")
                target = (
                    self.document(raw, _folder(path), path, False) if isinstance(raw, str) else None
                )
                if target is not None and target not in seen:
                    seen.add(target)
                    queue.append(target)
        return order


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


def _csv_format(traits: dict, where: str) -> CsvFormat | None:
    args = traits.get(CSV_TRAIT)
    if args is None:
        return None
    default = CsvFormat()
    return CsvFormat(
        header=_flag(args.get("columnHeaders"), default.header, where),
        delimiter=_text_or_none(args.get("delimiter")) or default.delimiter,
        quote=_text_or_none(args.get("quote")) or default.quote,
        escape=_text_or_none(args.get("escape")),
        encoding=_text_or_none(args.get("encoding")) or default.encoding,
        skip_lines=_count(args.get("skipLines"), where),
    )


def _data_type(item: dict) -> str | None:
    for key in ("dataFormat", "dataType"):
        value = item.get(key)
        if isinstance(value, dict):
            value = value.get("dataTypeReference")
        if isinstance(value, str):
            return value
    return None


def _reference_name(ref: Any, key: str) -> str | None:
    """The name a CDM reference points at: a plain string or {key: "name", ...}."""
    if isinstance(ref, dict):
        ref = ref.get(key)
    return ref if isinstance(ref, str) and ref else None


def _first_by_name(attributes: list[Attribute]) -> Iterator[Attribute]:
    seen: set[str] = set()
    for attribute in attributes:
        if attribute.name not in seen:
            seen.add(attribute.name)
            yield attribute


# --- model.json --------------------------------------------------------------------------


def _load_model_json(source: FileSource, path: str) -> Manifest:
    data = _read_json(source, path)
    folder = _folder(path)
    entities = tuple(_model_entity(item, path, folder) for item in _objects(data, "entities", path))
    return Manifest(path, folder, "model.json", entities)


def _model_entity(item: dict, where: str, folder: str) -> Entity:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise PermanentError(f"{where}: an entity has no name")
    attributes = tuple(
        Attribute(a["name"], a.get("dataType") if isinstance(a.get("dataType"), str) else None)
        for a in _objects(item, "attributes", where)
        if isinstance(a.get("name"), str)
    )
    partitions = tuple(
        _model_partition(p, where, folder) for p in _objects(item, "partitions", where)
    )
    return Entity(name, attributes, partitions, ())


def _model_partition(item: dict, where: str, folder: str) -> Partition:
    location = item.get("location")
    if not isinstance(location, str) or not location.strip():
        raise PermanentError(f"{where}: a partition has no location")
    csv = _model_csv(item.get("fileFormatSettings"), where)
    namespace, rest = patterns.split_namespace(location.strip())
    if namespace in (None, "local"):
        try:
            return Partition(patterns.resolve_path(rest, folder, folder), False, csv)
        except ValueError as e:
            raise PermanentError(f"{where}: partition location: {e}") from None
    guess = patterns.url_location(location, folder) if "//" in location else None
    if guess is None:
        raise PermanentError(f"{where}: partition location {location!r} is not a file URL")
    return Partition(guess, False, csv, url=location)


def _model_csv(settings: Any, where: str) -> CsvFormat:
    """model.json CSV settings: unlike a CDM trait, columnHeaders defaults to false here.

    quoteStyle and csvStyle only say when the writer quoted: '"' reads both styles.
    """
    if not isinstance(settings, dict):
        return CsvFormat(header=False)
    return CsvFormat(
        header=_flag(settings.get("columnHeaders"), False, where),
        delimiter=_text_or_none(settings.get("delimiter")) or ",",
        encoding=_text_or_none(settings.get("encoding")) or "utf-8",
    )


def _partition_covers(partition: Partition, folder: str, path: str) -> bool:
    if partition.url is None:
        return partition.location == path
    return patterns.url_covers(partition.url, folder, path)


def _pinned(partition: Partition, folder: str, files: Callable[[str], list[str]]) -> Partition:
    """A model.json partition located at the existing file its URL ends with, if any."""
    if partition.url is None:
        return partition
    matches = [p for p in files(folder) if _partition_covers(partition, folder, p)]
    if not matches:
        return partition
    return dataclasses.replace(partition, location=max(matches, key=lambda p: p.count("/")))


# --- resolving and inspecting ------------------------------------------------------------


def _regex(pattern: PartitionPattern) -> re.Pattern[str]:
    try:
        return patterns.compile_pattern(pattern.glob_pattern, pattern.regular_expression)
    except ValueError as e:
        raise PermanentError(str(e)) from None


def _pattern_partitions(entity: Entity, files: Callable[[str], list[str]]) -> Iterator[Partition]:
    for pattern in entity.patterns:
        regex = _regex(pattern)
        for path in files(pattern.root_location):
            if patterns.pattern_matches(regex, pattern.root_location, path):
                yield Partition(path, pattern.incremental, pattern.csv)


def _unique_sorted(partitions: list[Partition]) -> list[Partition]:
    """One partition per location and kind, the first declared winning, as the object model."""
    unique: dict[tuple[bool, str], Partition] = {}
    for partition in partitions:
        unique.setdefault((partition.incremental, partition.location), partition)
    return [unique[key] for key in sorted(unique)]


def _top_manifests(source: FileSource, root: str) -> list[str]:
    found = [f.path for f in source.list(root, recursive=True) if is_manifest_name(f.path)]
    if not found:
        return []
    shallowest = min(p.count("/") for p in found)
    return sorted((p for p in found if p.count("/") == shallowest), key=_manifest_rank)


def _entity_record(entity: Entity, partitions: list[Partition], root: str) -> dict:
    return {
        "name": entity.name,
        "attributes": [{"name": a.name, "dataType": a.data_type} for a in entity.attributes],
        "partitions": [
            {"location": patterns.relative_location(p.location, root), "incremental": p.incremental}
            for p in partitions
        ],
    }


# --- files, folders and JSON -------------------------------------------------------------

_PARTITION_FOLDER = re.compile(r"^(\d+([-_.]\d+)*|[^=]+=.*)$")
_DATA_SUFFIX = re.compile(r"\.(csv|json|jsonl)(\.gz)?$", re.IGNORECASE)
_PART_NUMBER = re.compile(r"[-_.]?(part[-_]?)?\d+$", re.IGNORECASE)


def is_partition_folder(name: str) -> bool:
    """A folder that partitions data by date or key (2021, 09, 2021-09-28, year=2021)."""
    return bool(_PARTITION_FOLDER.match(name))


def _entity_by_convention(path: str, root: str) -> str:
    """The entity of a file no manifest describes: its nearest folder that is not a date or
    key=value partition, else the file name without suffixes and part number."""
    folders = _folder(path).split("/") if _folder(path) else []
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


def _folder(path: str) -> str:
    return path.rpartition("/")[0]


def _folders_up(folder: str, root: str) -> Iterator[str]:
    """`folder`, then each folder above it up to and including `root`."""
    while True:
        yield folder
        if folder == root or not folder:
            return
        folder = _folder(folder)


def _read_json(source: FileSource, path: str) -> dict:
    _, stream = source.open(path)
    with stream:
        data = stream.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise PermanentError(f"{path}: larger than {MAX_METADATA_BYTES >> 20} MiB")
    try:
        doc = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as e:
        raise PermanentError(f"{path}: broken JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PermanentError(f"{path}: not a JSON object")
    return doc


def _objects(data: dict, key: str, where: str) -> list[dict]:
    """data[key] as a list of objects; PermanentError when it is something else."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PermanentError(f"{where}: {key} is not a list of objects")
    return value


def _objects_lenient(data: dict | None, key: str) -> list[dict]:
    value = (data or {}).get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _flag(value: Any, default: bool, where: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PermanentError(f"{where}: columnHeaders {value!r} is not true or false")


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or isinstance(value, bool):
        raise PermanentError(f"{where}: skipLines {value!r} is not a count of lines")
    return number
