"""A database restart drops every pooled connection: the next transaction still succeeds."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from customers.models import Customer
from switchboard.tx import Database
from tests.conftest import Backend


# SQLite has no server to restart: PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_transactions_survive_the_server_dropping_pooled_connections(
    backend: Backend, db: Database
) -> None:

    async def add_customer(session: AsyncSession) -> None:
        session.add(Customer(name="Ana"))

    await db.run(add_customer)  # the pool now holds a live connection
    killer = create_async_engine(backend.database_url)
    async with killer.connect() as conn:
        killed = (
            await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).scalar_one()
    await killer.dispose()
    assert killed >= 1

    await db.run(add_customer)
    async with db.reading() as session:
        assert (await session.execute(select(func.count(Customer.id)))).scalar_one() == 2
