"""Group commit for intake: messages that arrive together are stored in one transaction.

Under load most of a message's cost is the transaction around it (session, BEGIN,
COMMIT, the event publish), not its three statements. The batcher takes whatever is
waiting, stores it all in one transaction and answers each caller once it committed, so
"acknowledged" still means "stored". A message with attachments gets a savepoint, so
its failure rolls back only itself; if the whole batch fails (a lost race), each message
is retried in a transaction of its own. On PostgreSQL a batch made only of returning
senders' plain text messages (the steady state of a busy widget) runs its one statement
on the pool's asyncpg connection without a session (`conversations.intake_pg`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage
from conversations.intake_pg import DriverIntake
from conversations.service import (
    DuplicateInBatch,
    IntakeResult,
    KnownThread,
    do_intake,
    do_intake_returning_senders,
)
from conversations.text import check_message_text
from switchboard.errors import DomainError
from switchboard.tx import Database

log = logging.getLogger(__name__)

MAX_BATCH = 64


@dataclass
class _Pending:
    message: InboundMessage
    known: KnownThread | None
    done: asyncio.Future[IntakeResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IntakeBatcher:
    def __init__(self, db: Database, *, committers: int = 2) -> None:
        self.db = db
        # PostgreSQL: a batch of returning senders' plain messages skips the session.
        self._driver = DriverIntake(db.engine) if DriverIntake.takes(db.engine) else None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._committers = committers
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._commit_loop(), name=f"intake-committer-{n}")
            for n in range(self._committers)
        ]

    async def close(self) -> None:
        """Store what was already submitted, then stop (never mid-transaction)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._driver is not None:
            await self._driver.close()

    async def submit(
        self, message: InboundMessage, known: KnownThread | None = None
    ) -> IntakeResult:
        """Store one message (raising its `DomainError`, if any) once it is committed."""
        if not self._tasks:
            return await self.db.run(lambda s: do_intake(s, message, known=known))
        pending = _Pending(message, known)
        self._queue.put_nowait(pending)
        return await pending.done

    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.cancel()
                raise
            except Exception:
                log.exception("intake batch failed unexpectedly")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _store(self, batch: list[_Pending], *, careful: bool = False) -> None:
        # Picked once, for the driver path or the session's bulk statement alike (a
        # retried transaction reuses it: it reads only the batch).
        picked = None if careful else _returning_senders(batch)
        if picked is not None and self._driver is not None:
            bulk, positions, _refused = picked
            if len(positions) == len(batch) and all(m.raw is None for m, _k, _t in bulk):
                await self._store_on_driver(self._driver, batch, bulk)
                return
        outcomes: dict[int, IntakeResult | DomainError] = {}

        # First optimistically (no dedupe query: the unique constraint catches a
        # duplicate, raising DuplicateInBatch); after any failure each message is redone
        # alone on the careful path.
        optimistic = not careful

        async def work(session: AsyncSession) -> None:
            outcomes.clear()
            rest = await self._store_returning_senders(session, batch, outcomes, picked)
            for n, pending in enumerate(batch):
                if n not in rest:
                    continue
                message, known = pending.message, pending.known
                try:
                    if message.attachments:
                        async with session.begin_nested():
                            outcome = await do_intake(
                                session, message, known=known, optimistic=optimistic
                            )
                    else:
                        # No statement runs before do_intake's own checks can fail, so a
                        # refused message leaves nothing behind in the shared transaction.
                        outcome = await do_intake(
                            session, message, known=known, optimistic=optimistic
                        )
                except DomainError as refused:
                    outcomes[n] = refused
                else:
                    outcomes[n] = outcome

        try:
            await self.db.run(work)
        except Exception as exc:
            if careful:
                for pending in batch:
                    _settle(pending, None, failure=True)
                raise
            await self._one_by_one(batch, exc)
            return
        for n, pending in enumerate(batch):
            _settle(pending, outcomes[n])

    async def _store_on_driver(
        self,
        driver: DriverIntake,
        batch: list[_Pending],
        bulk: list[tuple[InboundMessage, KnownThread, str]],
    ) -> None:
        try:
            results, events = await driver.store(bulk)
        except Exception as exc:
            await self._one_by_one(batch, exc)
            return
        # Committed: the callers are answered first, so their acks go out before this
        # process's own listeners and the Redis publisher take their turns; the events
        # are still delivered locally before any caller resumes.
        gone = []
        for pending, result in zip(batch, results, strict=True):
            if result is None:
                gone.append(pending)  # its conversation was deleted meanwhile
            else:
                _settle(pending, result)
        await self.db.bus.publish_many(events)
        await asyncio.gather(*(self._store([pending], careful=True) for pending in gone))

    async def _one_by_one(self, batch: list[_Pending], failure: Exception) -> None:
        """A batch failed as a whole (a duplicate, a lost race): each message again, alone."""
        level = logging.DEBUG if isinstance(failure, DuplicateInBatch) else logging.WARNING
        log.log(level, "intake batch of %d failed (%r); storing one by one", len(batch), failure)
        await asyncio.gather(*(self._store([pending], careful=True) for pending in batch))

    async def _store_returning_senders(
        self,
        session: AsyncSession,
        batch: list[_Pending],
        outcomes: dict[int, IntakeResult | DomainError],
        picked: _Picked | None,
    ) -> set[int]:
        """Store the plain text messages of senders whose conversation is known, one per
        conversation, with two statements for all of them (`picked`; None on the careful
        path, which takes every message alone). Returns the positions left for the
        message-by-message path."""
        if picked is None:
            return set(range(len(batch)))
        bulk, positions, refused = picked
        outcomes.update(refused)
        # On PostgreSQL even one message is a statement fewer this way (one instead of
        # two); elsewhere the per-message path's prebuilt statements do as well for one.
        if len(bulk) > 1 or (bulk and _dialect(session) == "postgresql"):
            results = await do_intake_returning_senders(session, bulk)
            for n, result in zip(positions, results, strict=True):
                outcomes[n] = result
        else:
            positions = []
        return (
            set(range(len(batch)))
            - set(positions)
            - {n for n, o in outcomes.items() if isinstance(o, DomainError)}
        )


# Returning senders' messages (message, thread, checked text), their positions in the
# batch, and the refused ones by position.
_Picked = tuple[list[tuple[InboundMessage, KnownThread, str]], list[int], dict[int, DomainError]]


def _returning_senders(batch: list[_Pending]) -> _Picked:
    """The plain text messages of senders whose conversation is known, the first per
    conversation, with their positions in the batch; and the refused ones by position."""
    bulk: list[tuple[InboundMessage, KnownThread, str]] = []
    positions: list[int] = []
    refused: dict[int, DomainError] = {}
    seen: set[int] = set()
    for n, pending in enumerate(batch):
        known, message = pending.known, pending.message
        if known is None or message.attachments or known.conversation_id in seen:
            continue
        try:
            text = check_message_text(message.text)
        except DomainError as refusal:
            refused[n] = refusal
            continue
        seen.add(known.conversation_id)
        bulk.append((message, known, text))
        positions.append(n)
    return bulk, positions, refused


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else ""


def _settle(
    pending: _Pending, outcome: IntakeResult | DomainError | None, *, failure: bool = False
) -> None:
    if pending.done.done():
        return
    if failure or outcome is None:
        pending.done.set_exception(RuntimeError("the message could not be stored"))
    elif isinstance(outcome, DomainError):
        pending.done.set_exception(outcome)
    else:
        pending.done.set_result(outcome)
