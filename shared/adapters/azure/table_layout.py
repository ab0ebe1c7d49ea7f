"""The Azure Table layout of the profile store: which table holds what, under which keys.

activities    PK bucket(id)   RK 'a' + id                   the activity (truth, no CustomerId)
              PK bucket(id)   RK 'f' + file + etag + 'a'..  lineage marker, same transaction
activitykeys  PK bucket(ck)   RK ck + desc(time) + desc(id) activity by customer key ck =
                                                            (customer entity, foreign key)
customerrows  PK bucket(ek)   RK 'c' + ek                   customer row (truth), ek = (entity, key)
              PK bucket(ek)   RK 'f' + file + etag + 'c'..  lineage marker, same transaction
activitykeys  PK bucket(vk)   RK vk + desc(time) + desc(id) activity by visitor vk = (customer
                                                            entity, visitor), when its foreign
                                                            key is another (a signed-in visit)
customers     PK bucket(cid)  RK cid + ek                   the keys of one customer id
rejects       PK file         RK row number                 rejected rows of one file
awaitingmetadata PK 'a'       RK digest(path) + etag        a ledger entry awaiting metadata

An activity's customer is found through its customer key when read, so it never needs
"moving" when a customer row arrives, changes or goes. `activitykeys` and `customers` are
indexes: written before the truth they point at, checked against it when read, and removed
only while they still hold what was replaced. Data-derived key parts are digests
(`digest`), so quotes, slashes, '#', '?' and the like never reach a key.
"""

from __future__ import annotations

import orjson

from shared.adapters.azure.table_keys import Entity, bucket, descending, digest, plain_key
from shared.core.model import ACTIVITY_FIELDS, Activity, CustomerRow, Reject

ACTIVITIES = "activities"
KEYED = "activitykeys"
CUSTOMER_ROWS = "customerrows"
MEMBERS = "customers"
REJECTS = "rejects"
LEDGER = "ledger"
OVERLAPS = "overlaps"  # files whose copies of a record met: see shared/core/ingest/overlaps.py
REREADS = "rereads"  # files to read again because a file changes, until they were
# Ledger entries awaiting CDM metadata, in one partition: an index, checked against the ledger
# when read (see TableLedger.awaiting_metadata).
AWAITING = "awaitingmetadata"

# What an index row must still hold for a writer to delete it.
KEYED_IDENTITY = ("ActivityId", "SourceFile", "SourceRow", "SourceETag")
MEMBER_IDENTITY = ("CustomerId", "Entity", "Key", "SourceFile", "SourceRow", "SourceETag")
_LONG_ID = 64


def overlap_record(winner: str, loser: str) -> Entity:
    return {"PartitionKey": digest(winner), "RowKey": digest(loser), "Winner": winner,
            "Loser": loser}  # fmt: skip


def reread_record(path: str, file: str, noted: int) -> Entity:
    return {"PartitionKey": digest(path), "RowKey": digest(file), "Path": path, "File": file,
            "Noted": noted}  # fmt: skip


def activity_where(activity_id: str) -> tuple[str, str]:
    return bucket(digest(activity_id)), "a" + plain_key(activity_id)


def activity_record(activity: Activity) -> Entity:
    partition, row = activity_where(activity.activity_id)
    record: Entity = {"PartitionKey": partition, "RowKey": row}
    for attr, name in ACTIVITY_FIELDS.items():
        if attr not in ("customer_id", "identity_path"):
            record[name] = getattr(activity, attr)
    record["CustomerEntity"] = activity.customer_entity
    return record


def activity_of(record: Entity, customer_id: str | None) -> Activity:
    values = {attr: record.get(name) for attr, name in ACTIVITY_FIELDS.items()}
    values["customer_id"] = customer_id
    return Activity(**values, customer_entity=record.get("CustomerEntity"))


def customer_key_of(record: Entity) -> tuple[str, str] | None:
    """(customer entity, foreign key) of an activity record, if it has a relationship."""
    entity, key = record.get("CustomerEntity"), record.get("ActivityForeignKey")
    return None if entity is None or key is None else (entity, key)


def timeline_key(time: str, activity_id: str) -> str:
    """Newest first, ties by ActivityId descending; absurdly long ids by their digest."""
    tie = activity_id if len(activity_id) <= _LONG_ID else digest(activity_id)
    return descending(time) + descending(tie)


def keyed_record(record: Entity) -> Entity | None:
    """The `activitykeys` row of an activity record, or None when it has no customer key."""
    customer_key = customer_key_of(record)
    if customer_key is None:
        return None
    ck = digest(*customer_key)
    return {
        "PartitionKey": bucket(ck),
        "RowKey": ck + timeline_key(record["ActivityTime"], record["ActivityId"]),
        "ActivityType": record["ActivityType"],
        "ActivityTypeDisplay": record["ActivityTypeDisplay"],
        "ShowInTimeline": record["ShowInTimeline"],
        **{name: record[name] for name in KEYED_IDENTITY},
    }


def visitor_digest(entity: str, visitor: str) -> str:
    return digest(entity, visitor, "\x00visitor")


def visitor_keyed_record(record: Entity) -> Entity | None:
    """The `activitykeys` row of a signed-in activity under its visitor: an anonymous one's
    foreign key is its visitor id, so its keyed_record already serves the visitor."""
    entity, visitor = record.get("CustomerEntity"), record.get("VisitorId")
    if entity is None or visitor is None or visitor == record.get("ActivityForeignKey"):
        return None
    vk = visitor_digest(entity, visitor)
    return {
        "PartitionKey": bucket(vk),
        "RowKey": vk + timeline_key(record["ActivityTime"], record["ActivityId"]),
        "ActivityType": record["ActivityType"],
        "ActivityTypeDisplay": record["ActivityTypeDisplay"],  # a type filter may name it
        "ShowInTimeline": record["ShowInTimeline"],
        "ForeignKey": record["ActivityForeignKey"],
        **{name: record[name] for name in KEYED_IDENTITY},
    }


def visitor_keyed_range(entity: str, visitor: str) -> tuple[str, str, str]:
    vk = visitor_digest(entity, visitor)
    return bucket(vk), vk, vk + "~~~"


def keyed_range(entity: str, key: str) -> tuple[str, str, str]:
    """Partition, exclusive low and exclusive high RowKey of one customer key's activities."""
    ck = digest(entity, key)
    return bucket(ck), ck, ck + "~~~"


def customer_where(entity: str, key: str) -> tuple[str, str]:
    ek = digest(entity, key)
    return bucket(ek), "c" + ek


def customer_record(row: CustomerRow, now: str) -> Entity:
    partition, row_key = customer_where(row.entity, row.key)
    return {
        "PartitionKey": partition, "RowKey": row_key, "Entity": row.entity, "Key": row.key,
        "CustomerId": row.customer_id, "Attributes": orjson.dumps(row.attributes).decode(),
        "SourceFile": row.source_file, "SourceETag": row.source_etag,
        "SourceRow": row.source_row, "UpdatedAt": now,
    }  # fmt: skip


def member_record(record: Entity) -> Entity:
    """The `customers` row that lists a customer row under its customer id."""
    cd = digest(record["CustomerId"])
    return {
        "PartitionKey": bucket(cd),
        "RowKey": cd + record["RowKey"][1:],
        **{name: record[name] for name in MEMBER_IDENTITY},
    }


def members_range(customer_id: str) -> tuple[str, str, str]:
    cd = digest(customer_id)
    return bucket(cd), cd, cd + "~"


def reject_record(reject: Reject) -> Entity:
    return {
        "PartitionKey": digest(reject.file), "RowKey": f"{reject.row:012d}", "File": reject.file,
        "FileETag": reject.etag, "Row": reject.row, "Entity": reject.entity,
        "Reason": reject.reason, "Excerpt": reject.excerpt,
    }  # fmt: skip


def reject_of(record: Entity) -> Reject:
    return Reject(
        record["File"], record["FileETag"], record["Row"], record.get("Entity"),
        record["Reason"], record["Excerpt"],
    )  # fmt: skip
