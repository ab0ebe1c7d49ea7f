"""Entity documents: each read once, imports followed, an entity's attributes resolved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.core.cdm import patterns
from shared.core.cdm.json_files import Reader, objects_lenient, read_json
from shared.core.cdm.model import Attribute, folder_of
from shared.core.errors import NotFound, PermanentError
from shared.core.ports import FileSource

MAX_DEPTH = 32
# Standard CDM libraries (cdm:/foundations.cdm.json ...) are not part of an export.
_LIBRARY_NAMESPACES = frozenset({"cdm"})


class EntityDocuments:
    """The entity documents of an export, read against the manifest tree being loaded."""

    def __init__(self, source: FileSource, reader: Reader | None = None) -> None:
        self.source = source
        self.read = reader or (lambda path: read_json(source, path))
        self.docs: dict[str, dict | None] = {}
        self.scopes: dict[str, list[str]] = {}
        # The manifest loader sets these for each tree; the documents read stay cached across.
        self.top = ""
        self.corpus_root = ""

    def declared_attributes(self, schema: Any, folder: str, where: str) -> tuple[Attribute, ...]:
        """The attributes of 'doc.cdm.json/Entity'; none when the document is not in the export."""
        if not isinstance(schema, str) or "/" not in schema.strip("/"):
            return ()
        doc, _, name = schema.rpartition("/")
        doc_path = self.document(doc, folder, where, strict=True)
        if doc_path is None:
            return ()
        return tuple(_first_by_name(self.entity_attributes(name, doc_path, 0)))

    def missing_document(self, schema: Any, folder: str, where: str) -> str | None:
        """The document of 'doc.cdm.json/Entity' when it belongs in the export and is not
        there; None when it is, or lives in a library (cdm:/...) an export never carries."""
        if not isinstance(schema, str) or "/" not in schema.strip("/"):
            return None
        doc = schema.rpartition("/")[0]
        if patterns.split_namespace(doc.strip())[0] not in (None, "local"):
            return None
        return doc if self.document(doc, folder, where, strict=True) is None else None

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
                self.docs[path] = self.read(path)
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
            for definition in objects_lenient(self.docs[path], "definitions"):
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
            for item in objects_lenient(self.docs[path], "imports"):
                raw = item.get("corpusPath") or item.get("uri")
                target = (
                    self.document(raw, folder_of(path), path, False)
                    if isinstance(raw, str)
                    else None
                )
                if target is not None and target not in seen:
                    seen.add(target)
                    queue.append(target)
        return order


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
