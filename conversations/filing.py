"""Group commit for filing channel deliveries: webhooks that arrive together share one
transaction and one wake-up.

Filing is one INSERT, so under load its cost is the transaction around it (BEGIN,
COMMIT, the `InboundWake` publish), not the statement. The filer takes whatever is
waiting, files it all with one multi-row `INSERT … ON CONFLICT DO NOTHING`, and answers
each webhook only after the commit — "200" still means "stored".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Delivery, RawInbound
from conversations.inbound import do_accept, inbound_row
from conversations.models import InboundEvent
from switchboard.events import InboundWake
from switchboard.tx import Database, emit

log = logging.getLogger(__name__)

MAX_BATCH = 200
_events: Table = InboundEvent.__table__  # type: ignore[assignment]


@dataclass
class _Filing:
    row: dict[str, Any]
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


async def do_accept_many(session: AsyncSession, rows: list[dict[str, Any]]) -> list[bool]:
    """File several deliveries; for each, whether it was new (the first of its key)."""
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_events)
        .on_conflict_do_nothing(index_elements=["inbox_id", "dedupe_key"])
        .returning(_events.c.inbox_id, _events.c.dedupe_key)
    )
    created = {tuple(r) for r in await session.execute(statement, rows)}
    new: list[bool] = []
    for row in rows:
        key = (row["inbox_id"], row["dedupe_key"])
        new.append(key in created)
        created.discard(key)  # a second copy in the same batch is a redelivery
    if any(new):
        emit(session, InboundWake(actor="filing"))
    return new


class DeliveryFiler:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[_Filing] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="delivery-filer")

    async def close(self) -> None:
        """File what was already handed in, then stop (never mid-transaction)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def file(
        self, *, inbox_id: int, channel: str, delivery: Delivery, raw: RawInbound
    ) -> bool:
        """File one verified delivery once committed; False for a redelivery."""
        if self._task is None:
            return await self.db.run(
                lambda s: do_accept(
                    s, inbox_id=inbox_id, channel=channel, delivery=delivery, raw=raw
                )
            )
        filing = _Filing(inbound_row(inbox_id, channel, delivery, raw))
        self._queue.put_nowait(filing)
        return await filing.done

    @staticmethod
    def _work(rows: list[dict[str, Any]]) -> Callable[[AsyncSession], Awaitable[list[bool]]]:
        return lambda session: do_accept_many(session, rows)

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self.db.run(self._work([f.row for f in batch]))
            except asyncio.CancelledError:
                for filing in batch:
                    filing.done.cancel()
                raise
            except Exception as exc:
                log.exception("filing %d deliveries failed", len(batch))
                for filing in batch:
                    if not filing.done.done():
                        filing.done.set_exception(exc)
            else:
                for filing, new in zip(batch, outcomes, strict=True):
                    if not filing.done.done():
                        filing.done.set_result(new)
            finally:
                for _ in batch:
                    self._queue.task_done()
