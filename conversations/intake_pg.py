"""Intake's busiest transaction on PostgreSQL, run on the pool's asyncpg connection.

A batch of returning senders' plain text messages is one statement
(`STORE_RETURNING_SENDERS_PG`) in one transaction. Through an ORM session that
transaction cost ~340 µs of CPU — the session, the pool's checkout, a greenlet hop per
await — against ~80 µs for the same statement on a raw connection of the same pool
(`docs/benchmarks.md`, intake): with one customer writing, a quarter of the hub's CPU per
message. So this path keeps SQLAlchemy's statement, its compiled text and its bind
processing, and skips only the session. Everything else — new senders, attachments, a
duplicate, a lost connection, SQLite — goes the session path (`conversations.intake`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.base import InboundMessage
from conversations import statements
from conversations.events import MessageCreated
from conversations.service import (
    DuplicateInBatch,
    IntakeResult,
    KnownThread,
    pg_batch_params,
    pg_batch_stored,
    returning_senders_batch,
    returning_senders_outcome,
)
from switchboard.db import utcnow


class DriverIntake:
    """`do_intake_returning_senders` for PostgreSQL, without a session; events are the
    caller's to publish once this returns (the transaction has committed by then)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect = engine.dialect
        compiled = statements.STORE_RETURNING_SENDERS_PG.compile(dialect=dialect)
        self.sql = compiled.string
        names = compiled.positiontup or []
        processors: list[Callable[[Any], Any] | None] = [
            compiled.binds[name].type.bind_processor(dialect) for name in names
        ]
        self._binds = list(zip(names, processors, strict=True))

    @staticmethod
    def takes(engine: AsyncEngine) -> bool:
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        """The statement's positional arguments, each through SQLAlchemy's bind processor
        for its type (UTC datetimes, JSON), as `connection.execute` would pass them."""
        return [
            params[name] if process is None else process(params[name])
            for name, process in self._binds
        ]

    async def store(
        self, items: Sequence[tuple[InboundMessage, KnownThread, str]]
    ) -> tuple[list[IntakeResult], list[MessageCreated]]:
        if any(msg.raw is not None for msg, _known, _text in items):
            raise ValueError("a raw payload needs the per-row form")
        now = utcnow()
        rows, params = pg_batch_params(returning_senders_batch(items), now)
        arguments = self.arguments(params)
        pooled = await self.engine.raw_connection()
        try:
            connection: asyncpg.Connection = pooled.driver_connection
            async with connection.transaction():
                # Read back inside the transaction: a duplicate rolls the batch back.
                stored = pg_batch_stored(await connection.fetch(self.sql, *arguments), rows)
        except BaseException as exc:
            if not isinstance(exc, DuplicateInBatch | asyncpg.PostgresError) or (
                connection.is_closed()
            ):
                # Cancelled mid-statement or the connection broke: its state is unknown,
                # so it is not handed back to the pool.
                pooled.invalidate(exc if isinstance(exc, Exception) else None)
            raise
        finally:
            pooled.close()
        return returning_senders_outcome(items, stored, now)
