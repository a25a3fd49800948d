"""The embedded default: SQLite in WAL mode, waiting for the writer instead of failing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from switchboard.db import SQLITE_BUSY_TIMEOUT_MS, create_engine


async def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await engine.dispose()
    assert (mode, timeout, foreign_keys) == ("wal", SQLITE_BUSY_TIMEOUT_MS, 1)
