"""Intake's busiest statement on PostgreSQL, run on a connection of its own.

A batch of returning senders' plain text messages is one statement
(`STORE_RETURNING_SENDERS_PG_ALONE`), atomic by itself, so it runs autocommitted: one
round trip. Through an ORM session the same batch cost ~340 µs of CPU — the session, the
pool's checkout, a greenlet hop per await — against ~80 µs on a raw connection, and BEGIN
and COMMIT were two more round trips, each waiting for the busy event loop to come back
to it (`docs/benchmarks.md`, intake). Even a bare checkout from the pool costs ~60 µs a
batch (a greenlet, and the reset on check-in), so this path keeps connections of its own:
taken from the engine's pool once, with its connect arguments and set-up, and detached
from it — at most one per committer, beside the pool's `pool_size`. It keeps
SQLAlchemy's statement, its compiled text and its bind processing, and skips the rest.
Everything else — new senders, attachments, a duplicate, a lost connection, SQLite —
goes the session path (`conversations.intake`).
"""

from __future__ import annotations

import asyncio
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
    caller's to publish once this returns (the statement has committed by then)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect = engine.dialect
        compiled = statements.STORE_RETURNING_SENDERS_PG_ALONE.compile(dialect=dialect)
        self.sql = compiled.string
        names = compiled.positiontup or []
        processors: list[Callable[[Any], Any] | None] = [
            compiled.binds[name].type.bind_processor(dialect) for name in names
        ]
        self._binds = list(zip(names, processors, strict=True))
        # Idle connections of this path's own (see the module's docstring).
        self._idle: list[asyncpg.Connection] = []

    @staticmethod
    def takes(engine: AsyncEngine) -> bool:
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"

    async def _connection(self) -> asyncpg.Connection:
        """An idle connection of this path's, or a new one (one batch per connection at a
        time, so there are never more than there are committers)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():  # a database restart closes it meanwhile
                return connection
        pooled = await self.engine.raw_connection()
        fresh: asyncpg.Connection = pooled.driver_connection
        pooled.detach()  # ours now: the pool opens another in its place when it needs one
        try:
            # The statement's plan does not depend on its values (primary-key lookups
            # from unnested arrays), so one generic plan serves every batch. Left to
            # choose, PostgreSQL keeps planning each execution (the generic plan's
            # estimate looks dearer), ~0.1 ms of its CPU per batch.
            await fresh.execute("SET plan_cache_mode = force_generic_plan")
        except BaseException:
            fresh.terminate()
            raise
        return fresh

    async def close(self) -> None:
        """Close this path's connections (they are not the pool's, so `dispose` would not)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await asyncio.wait_for(connection.close(), timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError):
                connection.terminate()

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        """The statement's positional arguments, each through SQLAlchemy's bind processor
        for its type (UTC datetimes, JSON), as `connection.execute` would pass them."""
        return [
            params[name] if process is None else process(params[name])
            for name, process in self._binds
        ]

    async def store(
        self, items: Sequence[tuple[InboundMessage, KnownThread, str]]
    ) -> tuple[list[IntakeResult | None], list[MessageCreated]]:
        """Each item's result in order (None: its conversation is gone, for the caller
        to redo), and the stored messages' events. `DuplicateInBatch`: nothing stored."""
        if any(msg.raw is not None for msg, _known, _text in items):
            raise ValueError("a raw payload needs the per-row form")
        now = utcnow()
        rows, params = pg_batch_params(returning_senders_batch(items), now)
        arguments = self.arguments(params)
        connection = await self._connection()
        try:
            try:
                # Autocommitted: one round trip (see the module's docstring).
                returned = await connection.fetch(self.sql, *arguments)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateInBatch("a message in the batch was stored before") from exc
        except BaseException as exc:
            if not isinstance(exc, DuplicateInBatch | asyncpg.PostgresError) or (
                connection.is_closed()
            ):
                # Cancelled mid-statement or the connection broke: its state is unknown,
                # so it is dropped and the next batch connects afresh.
                connection.terminate()
            else:
                self._idle.append(connection)
            raise
        self._idle.append(connection)
        stored = pg_batch_stored(returned, rows, partial=True)
        _advanced, stored_rows, _ids = stored
        kept = [item for item in items if item[1].conversation_id in stored_rows]
        results, events = returning_senders_outcome(kept, stored, now)
        by_conversation = {result.conversation_id: result for result in results}
        return [by_conversation.get(known.conversation_id) for _m, known, _t in items], events
