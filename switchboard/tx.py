"""Transactions that publish their events only after commit, and retry honest races.

Services call `emit(session, event)`; `Database.run` commits, then publishes. A
transaction that lost a race (a unique constraint another writer won, a PostgreSQL
serialization failure, SQLite's "database is locked") is run again from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard.bus import EventBus
from switchboard.db import READ_ONLY
from switchboard.events import Event

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 5
_EVENTS_KEY = "switchboard_events"


def emit(session: AsyncSession, event: Event) -> None:
    """Queue an event; it is published only if this session's transaction commits."""
    session.info.setdefault(_EVENTS_KEY, []).append(event)


@contextlib.asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A nested transaction whose events are dropped with it if it rolls back, so a
    batch can lose one item without publishing what that item emitted."""
    events: list[Event] = session.info.setdefault(_EVENTS_KEY, [])
    mark = len(events)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del events[mark:]
        raise


def _is_transient(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError) or exc.connection_invalidated:
        # A lost race, or a connection the database dropped (e.g. after a restart).
        return True
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    markers = ("database is locked", "deadlock detected", "could not serialize", "serialization")
    return isinstance(exc, OperationalError | DBAPIError) and any(m in text for m in markers)


class Database:
    """The engine, the session factory and the bus that committed events go to."""

    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.bus = bus
        # On PostgreSQL a read session runs each query autocommitted: one round trip
        # instead of BEGIN, query, ROLLBACK. Under READ COMMITTED every statement takes
        # its own snapshot anyway, so the reads see nothing a transaction would not.
        # SQLite keeps its plain BEGIN: there it is what holds one WAL snapshot.
        self._read_options: dict[str, Any] = (
            dict(READ_ONLY)
            if engine.dialect.name == "sqlite"
            else {**READ_ONLY, "isolation_level": "AUTOCOMMIT"}
        )

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` in one transaction, retrying lost races; publish its events after commit."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self.sessionmaker() as session:
                    async with session.begin():
                        result = await work(session)
                    events: list[Event] = session.info.pop(_EVENTS_KEY, [])
                break
            except DBAPIError as exc:
                if attempt == MAX_ATTEMPTS or not _is_transient(exc):
                    raise
                log.debug("transaction retried after %s", type(exc).__name__)
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        if events:
            await self.bus.publish_many(events)
        return result

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reading: on SQLite a read-only transaction (one snapshot, never
        waiting for the write lock); on PostgreSQL each query autocommitted."""
        async with self.sessionmaker() as session:
            await session.connection(execution_options=self._read_options)
            yield session
            # Leaving closes the session: the transaction ends and loaded objects stay
            # usable (detached, not expired as a rollback would leave them).
