"""Small reads the event loop does itself (an API key's check, an Idempotency-Key's lookup), unless their store
is busy: then they wait in the thread pool, and the loop serves everything else meanwhile."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from opencws.backend import nowait
from opencws.backend.idempotency import IdempotencyStore
from opencws.backend.keys import KeyStore


def test_a_read_of_a_free_store_runs_on_the_event_loop_itself() -> None:
    lock = threading.Lock()
    threads: list[int] = []

    def get(x: int, wait: bool = True) -> int:
        with nowait.holding(lock, wait):
            threads.append(threading.get_ident())
            return 2 * x

    assert asyncio.run(nowait.read(get, 21)) == 42
    assert threads == [threading.get_ident()]


def test_a_read_of_a_busy_store_waits_in_the_pool_while_the_loop_runs_on() -> None:
    lock = threading.Lock()

    def get(x: int, wait: bool = True) -> int:
        with nowait.holding(lock, wait):
            return 2 * x

    async def main() -> tuple[int, int]:
        lock.acquire()  # a writer holds the store
        read = asyncio.create_task(nowait.read(get, 21))
        turns = 0
        for _ in range(10):  # the loop goes on serving
            await asyncio.sleep(0.01)
            turns += 1
        assert not read.done()
        lock.release()
        return await asyncio.wait_for(read, 30), turns

    assert asyncio.run(main()) == (42, 10)


def test_the_key_and_answer_stores_say_busy_instead_of_waiting(tmp_path: Path) -> None:
    keys, answers = KeyStore(str(tmp_path)), IdempotencyStore(str(tmp_path))
    _, token = keys.create("agent", ("ingest",))
    answers.put("k1", "batch-1", b'{"stored": 1, "rejected": []}')
    assert keys.check(token, wait=False) is not None and answers.get("k1", "batch-1", wait=False) is not None
    for store in (keys, answers):
        store._lock.acquire()
    try:
        with pytest.raises(nowait.Busy):
            keys.check(token, wait=False)
        with pytest.raises(nowait.Busy):
            answers.get("k1", "batch-1", wait=False)
    finally:
        for store in (keys, answers):
            store._lock.release()
    assert keys.check(token) is not None and answers.get("k1", "batch-1") == b'{"stored": 1, "rejected": []}'
    keys.close()
    answers.close()
