"""Small reads of SQLite that the event loop does itself, unless they would wait.

An API key's check and an `Idempotency-Key`'s lookup are one indexed read each (WAL: another process's writer
never blocks them), cheaper than the trip to the thread pool that a request would otherwise pay for each. But
their store's lock may be held by a thread that writes (a key created, an answer committed): then the read goes
to the pool, so that the loop, and every connection it serves, never waits behind a write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool

T = TypeVar("T")


class Busy(Exception):
    """The store's lock is held: the read would wait."""


@contextmanager
def holding(lock: threading.Lock, wait: bool) -> Iterator[None]:
    """`lock`, taken at once or else `Busy` when `wait` is false."""
    if not lock.acquire(blocking=wait):
        raise Busy
    try:
        yield
    finally:
        lock.release()


async def read(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args, wait=False)` here, on the event loop; `fn(*args)` in the thread pool when that is `Busy`."""
    try:
        return fn(*args, wait=False)
    except Busy:
        return await run_in_threadpool(fn, *args)
