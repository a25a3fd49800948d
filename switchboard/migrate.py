"""Schema migrations through Alembic, configured in code (no alembic.ini to lose)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from switchboard.db import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _in_thread(fn_name: str, database_url: str, revision: str) -> None:
    config = alembic_config(database_url)
    getattr(command, fn_name)(config, revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    # Alembic's env.py starts its own event loop: run it off ours.
    await asyncio.to_thread(_in_thread, "upgrade", database_url, revision)


async def downgrade(database_url: str, revision: str) -> None:
    await asyncio.to_thread(_in_thread, "downgrade", database_url, revision)


def revisions() -> list[Script]:
    """Every revision, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return list(reversed(list(scripts.walk_revisions("base", "heads"))))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()
