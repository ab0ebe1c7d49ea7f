"""A full pass of the evaluator split between forked children, one per core, each reading and
evaluating a run of customers of its own (shared/core/forked.py): the evaluator is Python,
one core's worth of work per activity, and a pass over every customer is most of what the
upkeep of a file that touched most of them costs, and all of `segments --as-of` and
`segments refresh`.

Only from the main thread (a fork copies the process as that thread sees it), on a store
with ordered reads a child may make on connections of its own (SQLite's
`evaluation_inputs(apart=True)`, after `customer_splits` committed what the parent wrote), and
for at least MIN_CUSTOMERS customers: a fork and its pipe cost a few milliseconds. The
evaluations arrive in no particular order, each customer once; the parent stores them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from multiprocessing.connection import wait
from typing import Any

import orjson

from shared.core import forked
from shared.core.audiences.evaluator import Audiences, Evaluation

PROCESSES = min(os.cpu_count() or 1, 4)
MIN_CUSTOMERS = 2_000
_BATCH = 200  # evaluations a message

Found = tuple[str, Evaluation]


def evaluations(
    store: Any, audiences: Audiences, at: datetime, start: str | None = None,
    wanted: Sequence[str] | None = None,
) -> Iterator[Found] | None:  # fmt: skip
    """Every customer's evaluation at `at` from `start` on, or only those of `wanted` (sorted),
    worked out side by side, in no particular order; None where that would not pay or cannot
    be (one core, not the main thread, a store without ranged reads, few customers)."""
    splits = getattr(store, "customer_splits", None)
    if PROCESSES < 2 or splits is None or not forked.available():
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    last = None
    if wanted is not None and len(wanted) < max(MIN_CUSTOMERS, PROCESSES):
        return None
    cuts = splits(start if wanted is None else wanted[0], PROCESSES, MIN_CUSTOMERS if wanted is None else 0)
    if not cuts:
        return None
    if wanted is not None:  # the wanted ones cut into runs of as many each; none read after the last
        start, last = wanted[0], wanted[-1]
        cuts = [wanted[len(wanted) * k // PROCESSES] for k in range(1, PROCESSES)]
    chosen = None if wanted is None else frozenset(wanted)
    bounds = list(zip([start, *cuts], [*cuts, None], strict=True))
    return _merged([
        functools.partial(_run, store, audiences, at, low, high, last, chosen) for low, high in bounds
    ])  # fmt: skip


def _run(
    store: Any, audiences: Audiences, at: datetime, low: str | None, high: str | None,
    last: str | None, chosen: frozenset[str] | None,
) -> Iterator[list[Found]]:  # fmt: skip
    """In a child: its run's evaluations, a batch at a time. Of chosen customers, only theirs
    are read where the store can (evaluation_inputs_of), not every activity of the run."""
    batch: list[Found] = []
    many = getattr(store, "evaluation_inputs_of", None)
    if chosen is not None and many is not None:
        mine = sorted(c for c in chosen if (low is None or c >= low) and (high is None or c < high))
        inputs = many(mine, audiences.fields, apart=True)
    else:
        inputs = store.evaluation_inputs(low, audiences.fields, high, apart=True)
    for customer_id, activities, attributes in inputs:
        if last is not None and customer_id > last:
            break
        if chosen is None or customer_id in chosen:
            batch.append((customer_id, audiences.evaluate(activities, attributes, at)))
            if len(batch) == _BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _encode(batch: list[Found]) -> bytes:
    return orjson.dumps([(c, e.measures, e.segments, e.next_change) for c, e in batch])


def _decode(body: bytes) -> list[Found]:
    return [(c, Evaluation(m, tuple(s), n)) for c, m, s, n in orjson.loads(body)]


def _merged(runs: Sequence[Callable[[], Iterator[list[Found]]]]) -> Iterator[Found]:
    """What the children send, as it comes; each ended and reaped when this ends, however."""
    with contextlib.ExitStack() as ending:
        streams = {}
        for run in runs:
            started = forked.start(run, _encode)
            stream = forked.items_from(started, _decode, "evaluating customers")
            ending.callback(_end, started, stream)
            streams[started[1]] = stream
        while streams:
            for ready in wait(list(streams)):
                batch = next(streams[ready], None)  # a whole message is there, or its end
                if batch is None:
                    del streams[ready]
                else:
                    yield from batch


def _end(started: tuple[Any, Any], stream: Iterator[Any]) -> None:
    stream.close()  # ends and reaps the child, if the stream began
    child, receive = started
    if child.is_alive():  # it never began: ended here
        child.kill()
    child.join()
    receive.close()
