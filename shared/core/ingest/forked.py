"""Mapped batches made in a forked child process, so that reading and mapping a file runs on
one core while the store writes on another.

Only for a local bulk load into SQLite (`footprint ingest`/`reconcile`), for files of at least
FOOTPRINT_READ_IN_CHILD_BYTES (4 MiB: a fork and a pipe cost a few milliseconds): there the
process's one core was the limit, half of it spent reading and mapping rows, and `sqlite3`
holds the GIL between rows, so a thread could not overlap them. A child forked per file reads the file and
sends mapped batches down a pipe; the parent only writes them. What the child inherits and
must not use (the store's connection, the ledger) it never touches, and it leaves through
os._exit, so nothing inherited is closed behind the parent's back.
"""

from __future__ import annotations

import contextlib
import marshal
import multiprocessing
import pickle
import sys
from collections.abc import Callable, Iterator

from shared.core.errors import PermanentError, TransientError
from shared.core.mapping import MappedBatch
from shared.core.model import Activity

# Room in the pipe for a batch in flight, so the child does not wait for every read (Linux).
_PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031
_BATCH, _END, _BROKEN, _FAILED = b"b", b"e", b"p", b"x"


def available() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def batches_from_child(make: Callable[[], Iterator[MappedBatch]]) -> Iterator[MappedBatch]:
    """The batches `make()` yields, made in a forked child. A PermanentError the child meets
    (a broken file) is raised here after the batches before it; anything else it meets, or its
    death, is raised as an error to retry."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with contextlib.suppress(OSError):  # a smaller pipe only makes the child wait more
        import fcntl

        fcntl.fcntl(send.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    child = context.Process(target=_produce, args=(make, send), daemon=True)
    child.start()
    send.close()
    try:
        while True:
            try:
                message = receive.recv_bytes()
            except EOFError:
                raise TransientError("the process reading the file ended before it") from None
            kind, body = message[:1], message[1:]
            if kind == _BATCH:
                yield _decode(body)
            elif kind == _BROKEN:
                raise PermanentError(body.decode())
            elif kind == _FAILED:
                raise TransientError(f"reading the file: {body.decode()}")
            else:
                return
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        receive.close()


def _produce(make: Callable[[], Iterator[MappedBatch]], send) -> None:  # type: ignore[no-untyped-def]
    try:
        for batch in make():
            send.send_bytes(_BATCH + _encode(batch))
        send.send_bytes(_END)
    except PermanentError as exc:
        send.send_bytes(_BROKEN + str(exc).encode())
    except BaseException as exc:  # reported to the parent, which retries the file later
        send.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}"[:1000].encode())


def _encode(batch: MappedBatch) -> bytes:
    # Activities as plain tuples through marshal: a third of pickle's cost for named tuples.
    activities = marshal.dumps([tuple(a) for a in batch.activities], 4)
    return pickle.dumps((activities, batch.customers, batch.rejects, batch.rows, batch.filtered), 5)


def _decode(body: bytes) -> MappedBatch:
    activities, customers, rejects, rows, filtered = pickle.loads(body)
    made = list(map(Activity._make, marshal.loads(activities)))
    return MappedBatch(made, customers, rejects, rows, filtered)
