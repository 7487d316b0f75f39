"""Writes to one row gathered while the previous write to it runs, and sent as one statement.

Many writes to the same row (a busy ticket's messages, one customer's new tickets) queue at
PostgreSQL's row lock whatever we do, and each one pays for its own round trip, its own
update of the row (a new version of it, with its search text) and its own commit. Here
they queue in the process instead: the first write of a key runs at once, and the writes
that arrive while it runs wait, then go together as one statement, run by the first of
them, on its connection. One row version and one commit serve them all. A batch is only
about cost: each write in it still gets its own answer, and correctness stays with the
statement (which takes the row lock and checks the rules once for the batch).

A write that must commit with others of its request (one inside a transaction) does not
join a batch: its statement would commit the batch's writes with its own, or roll them back.

Every request that joins takes its connection first (`Db.batch`), so a request whose turn it
is to run the batch never waits for the pool while the pool's connections wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from ticketdesk.errors import ServiceBusy

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 64
"""The most writes one statement takes; more wait for the next."""


class _Lead:
    """Handed to the first waiting write when a batch ends: run the next one."""


_LEAD = _Lead()


class _Waiter(Generic[Item, Result]):
    __slots__ = ("future", "item")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.future: asyncio.Future[Result | _Lead] = asyncio.get_running_loop().create_future()


class _Queue(Generic[Item, Result]):
    __slots__ = ("pending", "running")

    def __init__(self) -> None:
        self.pending: list[_Waiter[Item, Result]] = []
        self.running = False


Run = Callable[[Item, Sequence[Item]], Awaitable[Sequence[Result]]]


class Batches(Generic[Item, Result]):
    """Per key, the writes waiting for the one being run; `run(leader, items)` gives each
    item's result, in order, running on the connection of the leader's request."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._queues: dict[Hashable, _Queue[Item, Result]] = {}
        self._max_batch = max_batch

    def __len__(self) -> int:
        return len(self._queues)

    async def submit(self, key: Hashable, item: Item, run: Run[Item, Result]) -> Result:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        waiter: _Waiter[Item, Result] = _Waiter(item)
        queue.pending.append(waiter)
        if queue.running:
            try:
                answer = await waiter.future
            except asyncio.CancelledError:
                future = waiter.future
                led = future.done() and not future.cancelled() and future.result() is _LEAD
                if waiter in queue.pending:  # not in a batch yet: it leaves no trace
                    queue.pending.remove(waiter)
                if led:  # its turn to run the next batch came as it was cancelled
                    self._hand_on(key, queue)
                raise
            if not isinstance(answer, _Lead):
                return answer
        else:
            queue.running = True
        return await self._lead(key, queue, waiter, run)

    async def _lead(
        self,
        key: Hashable,
        queue: _Queue[Item, Result],
        leader: _Waiter[Item, Result],
        run: Run[Item, Result],
    ) -> Result:
        batch = queue.pending[: self._max_batch]
        del queue.pending[: len(batch)]
        try:
            results = await run(leader.item, [waiter.item for waiter in batch])
        except asyncio.CancelledError:
            # Whether the statement committed is unknown: the others may retry (safely,
            # with an Idempotency-Key).
            interrupted = ServiceBusy("the write was interrupted; retry shortly")
            self._fail(batch, leader, interrupted)
            raise
        except BaseException as exc:
            self._fail(batch, leader, exc)
            raise
        finally:
            self._hand_on(key, queue)
        assert len(results) == len(batch)
        mine = None
        for waiter, result in zip(batch, results, strict=True):
            if waiter is leader:
                mine = result
            elif not waiter.future.done():
                waiter.future.set_result(result)
        return mine  # type: ignore[return-value]  # the leader is in its own batch

    @staticmethod
    def _fail(
        batch: list[_Waiter[Item, Result]], leader: _Waiter[Item, Result], exc: BaseException
    ) -> None:
        for waiter in batch:
            if waiter is not leader and not waiter.future.done():
                waiter.future.set_exception(exc)

    def _hand_on(self, key: Hashable, queue: _Queue[Item, Result]) -> None:
        """The batch is done: the first waiting write runs the next, or the key is free."""
        while queue.pending:
            first = queue.pending[0]
            if not first.future.done():
                first.future.set_result(_LEAD)
                return
            queue.pending.pop(0)
        queue.running = False
        if self._queues.get(key) is queue:
            del self._queues[key]
