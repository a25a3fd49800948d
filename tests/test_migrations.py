"""Stairway: every migration upgrades, downgrades and upgrades again on an empty database,
and head matches the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.db import create_engine
from switchboard.migrate import (
    current_revision,
    downgrade,
    head_revision,
    revisions,
    upgrade,
)
from switchboard.schema import metadata
from tests.conftest import PG_ADMIN_URL, _need


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}"
        return
    _need("PostgreSQL", "127.0.0.1", 5432)
    name = f"sb_stairway_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def schema_differences(url: str) -> list[Any]:
    engine = create_engine(url)

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


def test_revisions_form_one_line() -> None:
    chain = revisions()
    assert chain, "no migrations found"
    assert chain[0].down_revision is None
    for previous, script in itertools.pairwise(chain):
        assert script.down_revision == previous.revision, f"{script.revision} branches"
    assert chain[-1].revision == head_revision()


async def test_stairway_upgrade_downgrade_upgrade(empty_database: str) -> None:
    url = empty_database
    for script in revisions():
        below = script.down_revision
        assert below is None or isinstance(below, str)
        await upgrade(url, script.revision)
        assert await current_revision(url) == script.revision
        await downgrade(url, below or "base")
        assert await current_revision(url) == below
        await upgrade(url, script.revision)
        assert await current_revision(url) == script.revision

    # Down to nothing leaves nothing but Alembic's own bookkeeping.
    await downgrade(url, "base")
    assert await table_names(url) <= {"alembic_version"}


async def test_head_schema_matches_the_models(empty_database: str) -> None:
    await upgrade(empty_database, "head")
    assert {t.name for t in metadata.sorted_tables} <= await table_names(empty_database)
    assert await schema_differences(empty_database) == []
