"""Visitors' links in Azure Tables: merged under ETag conditions, found by visitor, by key and
by file version.

links      PK bucket(vd)  RK vd + kd + fd + td   the link (truth), vd = digest(entity, visitor)
linkkeys   PK bucket(kd)  RK kd + vd + fd + td   index: the visitors linked to key kd
linkfiles  PK fd          RK td + vd + kd        index: the links one file version made

Index rows are written before the link and deleted after it, and hold nothing that changes, so
upserting them is idempotent. A link's first and last rows are merged by read, then create or
update conditional on the ETag read: of writers merging into one link at once, each retries
until its merge lands on what the others left, so none is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_access import TableAccess, batched, if_unchanged, is_conflict
from shared.adapters.azure.table_keys import Entity, bucket, digest, pack
from shared.core.errors import TransientError
from shared.core.identity.links import Link, merge_links

LINKS = "links"
LINK_KEYS = "linkkeys"
LINK_FILES = "linkfiles"
MAX_ROUNDS = 8


def visitor_digest(entity: str, visitor: str) -> str:
    return digest(entity, visitor)


def _parts(link: Link) -> tuple[str, str, str, str]:
    return (visitor_digest(link.customer_entity, link.visitor_id),
            digest(link.customer_entity, link.key), digest(link.source_file),
            digest(link.source_etag))  # fmt: skip


def link_record(link: Link) -> Entity:
    vd, kd, fd, td = _parts(link)
    return {
        "PartitionKey": bucket(vd), "RowKey": vd + kd + fd + td, "Entity": link.customer_entity,
        "VisitorId": link.visitor_id, "Key": link.key, "SourceFile": link.source_file,
        "SourceETag": link.source_etag, "FirstTime": link.first_time, "FirstRow": link.first_row,
        "LastTime": link.last_time, "LastRow": link.last_row,
    }  # fmt: skip


def link_of(record: Entity) -> Link:
    return Link(record["Entity"], record["VisitorId"], record["Key"], record["SourceFile"],
                record["SourceETag"], record["FirstTime"], record["FirstRow"],
                record["LastTime"], record["LastRow"])  # fmt: skip


def _key_row(link: Link) -> Entity:
    vd, kd, fd, td = _parts(link)
    return {"PartitionKey": bucket(kd), "RowKey": kd + vd + fd + td,
            "Entity": link.customer_entity, "Key": link.key, "VisitorId": link.visitor_id}  # fmt: skip


def _file_row(link: Link) -> Entity:
    vd, kd, fd, td = _parts(link)
    return {"PartitionKey": fd, "RowKey": td + vd + kd, "Entity": link.customer_entity,
            "VisitorId": link.visitor_id, "Key": link.key, "SourceFile": link.source_file,
            "SourceETag": link.source_etag}  # fmt: skip


def write_links(io: TableAccess, links: Sequence[Link]) -> None:
    merged = list(merge_links(links).values())
    if not merged:
        return
    io.write_all(LINK_FILES, [("upsert", _file_row(link)) for link in merged])
    io.write_all(LINK_KEYS, [("upsert", _key_row(link)) for link in merged])
    # A link's row is per file version, so a new version's links are new: created a partition
    # per transaction. A transaction that meets an existing row (a redelivery, a writer at once)
    # creates nothing, and its links are merged one by one.
    records = [(link, link_record(link)) for link in merged]
    batches = batched(records, lambda pair: pair[1]["PartitionKey"], lambda pair: [pair[1]])
    left = [link for found in io.map(lambda batch: _create_all(io, batch), batches) for link in found]
    io.map(lambda link: _merge(io, link), left)


def _create_all(io: TableAccess, records: list[tuple[Link, Entity]]) -> list[Link]:
    """Create the links' rows in one transaction: none left to merge, or, should any exist
    already, all of them."""
    with translated("writing visitor links"):
        try:
            io.submit(LINKS, [("create", record) for _, record in records])
        except TableTransactionError as exc:
            if not is_conflict(exc):
                raise
            return [link for link, _ in records]
    return []


def _merge(io: TableAccess, link: Link) -> None:
    record = link_record(link)
    table = io.table(LINKS)
    for _ in range(MAX_ROUNDS):
        old = io.get(LINKS, record["PartitionKey"], record["RowKey"])
        with translated("writing a visitor link"):
            try:
                if old is None:
                    table.create_entity(pack(record))
                    return
                wanted = link_of(old).merged(link)
                if wanted == link_of(old):
                    return
                new = link_record(wanted)
                table.update_entity(pack(new), UpdateMode.REPLACE, **if_unchanged(old))
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another writer merged first: merge into theirs
    raise TransientError("writing a visitor link: it kept changing under us")


def forget_links(io: TableAccess, path: str, keep_etag: str) -> list[Link]:
    """Delete the links other versions of `path` made: the link, then its index rows; returns
    them (their identities: the times and rows are not read)."""
    stale = list(io.query(
        LINK_FILES, "PartitionKey eq @pk and SourceETag ne @keep",
        {"pk": digest(path), "keep": keep_etag},
    ))  # fmt: skip
    if not stale:
        return []
    links = [Link(r["Entity"], r["VisitorId"], r["Key"], r["SourceFile"], r["SourceETag"],
                  "", 0, "", 0) for r in stale]  # fmt: skip
    # Whoever forgets the same version at once may have deleted a row already.
    io.delete_if_unchanged(LINKS, [link_record(link) for link in links], ())
    io.delete_if_unchanged(LINK_KEYS, [_key_row(link) for link in links], ())
    io.delete_if_unchanged(LINK_FILES, stale, ())
    return links


def links_of(io: TableAccess, entity: str, visitor: str) -> list[Link]:
    """Every link of one visitor of one customer entity."""
    vd = visitor_digest(entity, visitor)
    found = io.query(LINKS, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                     {"pk": bucket(vd), "low": vd, "high": vd + "~"})  # fmt: skip
    return sorted(link for link in map(link_of, found) if link.visitor_id == visitor)


def links_of_many(io: TableAccess, visitors: Sequence[tuple[str, str]]) -> list[list[Link]]:
    """links_of each (entity, visitor), a query per partition and a few visitors (not from
    inside the pool)."""
    ranges = []
    for entity, visitor in visitors:
        vd = visitor_digest(entity, visitor)
        ranges.append((bucket(vd), vd, vd + "~"))
    found = io.query_ranges(LINKS, ranges)
    return [sorted(link for link in map(link_of, rows) if link.visitor_id == visitor)
            for (_, visitor), rows in zip(visitors, found, strict=True)]  # fmt: skip


def visitors_of_many(io: TableAccess, keys: Sequence[tuple[str, str]]) -> list[set[str]]:
    """visitors_of each (entity, key), a query per partition and a few keys (not from inside
    the pool)."""
    ranges = []
    for entity, key in keys:
        kd = digest(entity, key)
        ranges.append((bucket(kd), kd, kd + "~"))
    found = io.query_ranges(LINK_KEYS, ranges, select=["Key", "VisitorId"])
    return [{r["VisitorId"] for r in rows if r["Key"] == key} for (_, key), rows in zip(keys, found, strict=True)]


def visitors_of(io: TableAccess, entity: str, key: str) -> set[str]:
    """The visitors ever linked to one key (an index: their links say whether they still are)."""
    kd = digest(entity, key)
    found = io.query(LINK_KEYS, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                     {"pk": bucket(kd), "low": kd, "high": kd + "~"}, select=["Key", "VisitorId"])  # fmt: skip
    return {r["VisitorId"] for r in found if r["Key"] == key}


def every_link(io: TableAccess, visitor: str | None = None) -> Iterable[Link]:
    """A scan of every link (of one visitor): for listing conflicts, not for a card."""
    if visitor is None:
        return map(link_of, io.scan(LINKS))
    return map(link_of, io.query(LINKS, "VisitorId eq @v", {"v": visitor}))


def delete_links(io: TableAccess, links: Sequence[Link]) -> None:
    """Delete links (an erasure's): the link, then its index rows, as forget_links does."""
    io.delete_if_unchanged(LINKS, [link_record(link) for link in links], ())
    io.delete_if_unchanged(LINK_KEYS, [_key_row(link) for link in links], ())
    io.delete_if_unchanged(LINK_FILES, [_file_row(link) for link in links], ())
