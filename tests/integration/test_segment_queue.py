"""Membership changes on a real Azurite queue: all of them, in order per segment, at least
once, through a storage outage in the middle of publishing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pytest
from azure.storage.queue import QueueClient

from shared import bootstrap
from shared.adapters.azure.queue import StorageQueue
from shared.adapters.memory import MemoryStore
from shared.core.audiences import upkeep
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.records import AudienceResult
from shared.core.config import parse_config
from shared.core.errors import TransientError
from tests.azurite import Azurite

pytestmark = pytest.mark.azurite
SEGMENTS = ("A", "B")


@pytest.fixture(scope="module")
def flaky_azurite() -> Iterator[Azurite]:
    emulator = Azurite(persistent=True)  # its data survives a restart
    yield emulator
    emulator.close()


def _audiences() -> Audiences:
    config = parse_config(orjson.dumps({
        "customerSources": [{"entity": "C", "key": "K"}],
        "measures": [{"name": "N", "aggregate": "count"}],
        "segments": [{"name": s, "rule": {"measure": "N", "op": ">", "value": 0}} for s in SEGMENTS],
    }))  # fmt: skip
    return bootstrap.audiences_of(config)


def _history(kept) -> None:  # type: ignore[no-untyped-def]
    """Twenty customers entering both segments, then half of them leaving A."""
    kept.save_audiences([AudienceResult(f"c-{i:02d}", {}, SEGMENTS, None) for i in range(20)], "fp", "2026-01-01T00:00:00.000Z")
    kept.save_audiences([AudienceResult(f"c-{i:02d}", {}, ("B",), None) for i in range(10)], "fp", "2026-01-02T00:00:00.000Z")


class _FailingAfter:
    """The real queue, with the storage account going away after `n` more messages."""

    def __init__(self, queue: StorageQueue, azurite: Azurite, n: int) -> None:
        self.queue, self.azurite, self.left = queue, azurite, n

    def put(self, messages: Sequence[str]) -> None:
        for message in messages:
            if self.left == 0:
                self.azurite.stop()
            self.left -= 1
            self.queue.put([message])


def _received(client: QueueClient) -> list[dict]:
    found = []
    while batch := list(client.receive_messages(messages_per_page=32, max_messages=32)):
        for message in batch:
            found.append(orjson.loads(message.content))
            client.delete_message(message)
    return found


def test_every_change_reaches_the_queue_in_order_through_an_outage(flaky_azurite: Azurite) -> None:
    kept = bootstrap.open_audiences(MemoryStore())
    _history(kept)
    audiences = _audiences()
    queue = StorageQueue.from_connection_string(flaky_azurite.connection_string, "segment-changes")
    with pytest.raises(TransientError):
        upkeep.publish_changes(kept, audiences, _FailingAfter(queue, flaky_azurite, 25), chunk=7)
    flaky_azurite.start()
    assert upkeep.publish_changes(kept, audiences, queue, chunk=7) > 0
    assert upkeep.publish_changes(kept, audiences, queue) == 0  # all put: nothing again
    got = _received(QueueClient.from_connection_string(flaky_azurite.connection_string, "segment-changes"))
    expected = [c.to_record() for s in SEGMENTS for c in kept.membership_changes(s, 0, 1000)]
    assert len(expected) == 50
    # At least once: every change arrived; a chunk cut by the outage came again, in order.
    firsts = list({orjson.dumps(m): m for m in got}.values())
    assert sorted(orjson.dumps(m) for m in firsts) == sorted(orjson.dumps(m) for m in expected)
    for segment in SEGMENTS:
        mine = [m for m in firsts if m["Segment"] == segment]
        assert mine == [m for m in expected if m["Segment"] == segment]
    assert len(got) - len(expected) <= 7  # duplicates at most one chunk
