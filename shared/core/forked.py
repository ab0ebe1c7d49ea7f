"""Work done in a forked child process and sent down a pipe, so that it runs on a core of its
own: the mapped batches of a large file being ingested (below), and the CSV of a part of an
export's activities (shared/core/export/folder.py).

Only for a local bulk load into SQLite (`footprint ingest`/`reconcile`), for files of at least
FOOTPRINT_READ_IN_CHILD_BYTES (4 MiB: a fork and a pipe cost a few milliseconds): there the
process's one core was the limit, half of it spent reading and mapping rows, and `sqlite3`
holds the GIL between rows, so a thread could not overlap them. A child forked per file reads the file and
sends mapped batches down a pipe; the parent only writes them. What the child inherits and
must not use (the store's connection, the ledger) it never touches, and it leaves through
os._exit, so nothing inherited is closed behind the parent's back.

The child never outlives its parent: it asks the kernel for SIGKILL when the parent dies
(PR_SET_PDEATHSIG), and, should that be unavailable, it holds no copy of the pipe's read end,
so its next write fails once the parent is gone. It writes to /dev/null instead of the
parent's stdout and stderr, so whoever reads the command's output sees it end with the command.
"""

from __future__ import annotations

import contextlib
import ctypes
import marshal
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from shared.core import interrupts
from shared.core.errors import PermanentError, TransientError
from shared.core.mapping import MappedBatch
from shared.core.model import Activity

# Room in the pipe for a batch in flight, so the child does not wait for every read (Linux).
_PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031
_BATCH, _END, _BROKEN, _FAILED = b"b", b"e", b"p", b"x"
_PR_SET_PDEATHSIG = 1
# A child asked to end (SIGTERM) that has not after this is killed.
_END_SECONDS = 10.0
T = TypeVar("T")


def available() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def batches_from_child(make: Callable[[], Iterator[MappedBatch]]) -> Iterator[MappedBatch]:
    """The batches `make()` yields, made in a forked child. A PermanentError the child meets
    (a broken file) is raised here after the batches before it; anything else it meets, or its
    death, is raised as an error to retry."""
    yield from _received(*start(make, _encode), _decode, "reading the file")


def start(make: Callable[[], Iterator[T]], encode: Callable[[T], bytes]) -> tuple[Any, Any]:
    """Fork a child that sends `encode(item)` of each item `make()` yields down a pipe;
    returns the child and the pipe's read end, for `items_from`. Fork from the thread that
    owns the process's state (the main one): the child starts as a copy of it."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with contextlib.suppress(OSError):  # a smaller pipe only makes the child wait more
        import fcntl

        fcntl.fcntl(send.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    # The child starts with the parent's handlers, which raise; SIGTERM or Ctrl-C arriving
    # before it set its own would run them in the child. Blocked across the fork, such a signal
    # waits (in the parent too, for a moment) and reaches the child once its own are set.
    try:
        with interrupts.held_off() as mask:
            child = context.Process(target=_produce, args=(make, encode, send, receive, os.getpid(), mask),
                                    daemon=True)  # fmt: skip
            child.start()
    finally:
        send.close()
    return child, receive


def items_from(started: tuple[Any, Any], decode: Callable[[bytes], T], doing: str) -> Iterator[T]:
    """What a child `start`ed sends, decoded; the child is ended and reaped when this ends,
    however it ends. Errors as batches_from_child says, `doing` naming the work in them."""
    yield from _received(*started, decode, doing)


def _received(child, receive, decode: Callable[[bytes], T], doing: str) -> Iterator[T]:  # type: ignore[no-untyped-def]
    try:
        while True:
            try:
                message = receive.recv_bytes()
            except EOFError:
                raise TransientError(f"the process {doing} ended before it") from None
            kind, body = message[:1], message[1:]
            if kind == _BATCH:
                yield decode(body)
            elif kind == _BROKEN:
                raise PermanentError(body.decode())
            elif kind == _FAILED:
                raise TransientError(f"{doing}: {body.decode()}")
            else:
                return
    finally:
        if child.is_alive():
            child.terminate()
        child.join(_END_SECONDS)
        if child.is_alive():  # it cannot refuse this one
            child.kill()
            child.join()
        receive.close()


class _PipeGone(Exception):
    """The pipe broke: the parent is gone, nobody is left to tell."""


def _send(send, message: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        send.send_bytes(message)
    except OSError:
        raise _PipeGone from None


def _produce(make, encode, send, receive, parent: int, mask) -> None:  # type: ignore[no-untyped-def]
    _detach(receive, parent, mask)
    try:
        for item in make():
            _send(send, _BATCH + encode(item))
        _send(send, _END)
    except _PipeGone:
        os._exit(1)
    except PermanentError as exc:
        with contextlib.suppress(OSError):
            send.send_bytes(_BROKEN + str(exc).encode())
    except BaseException as exc:  # the work's own failure (an OSError too): the parent says it
        with contextlib.suppress(OSError):
            send.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}"[:1000].encode())


def _detach(receive, parent: int, mask) -> None:  # type: ignore[no-untyped-def]
    """Tie the child's life to its parent's and let go of what is the parent's; `mask` is the
    parent's signal mask from before the fork, restored once the child's own handling is set."""
    receive.close()  # the parent's end: with it closed here, a dead parent breaks the pipe
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took hold
        os._exit(1)
    # Ctrl-C reaches the whole process group: the parent decides, and ends the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent ends it with SIGTERM: at once, not through the parent's handler, which would
    # raise here and have the child try to report into a pipe nobody reads any more.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGTERM held back ends the child here
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)


def _encode(batch: MappedBatch) -> bytes:
    # Activities as plain tuples through marshal: a third of pickle's cost for named tuples.
    activities = marshal.dumps([tuple(a) for a in batch.activities], 4)
    return pickle.dumps(
        (activities, batch.customers, batch.rejects, batch.links, batch.rows, batch.filtered), 5
    )


def _decode(body: bytes) -> MappedBatch:
    activities, customers, rejects, links, rows, filtered = pickle.loads(body)
    made = list(map(Activity._make, marshal.loads(activities)))
    return MappedBatch(made, customers, rejects, links, rows, filtered)
