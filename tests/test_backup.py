"""`switchboard backup` / `restore`: a hub's whole state moves between SQLite and
PostgreSQL unchanged, a damaged archive loads nothing, and live data is never overwritten."""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from customers.merge import do_merge
from customers.models import Customer
from knowledge_base.service import do_create_article
from switchboard import accounts
from switchboard import backup as backup_module
from switchboard.backup import _encode, backup, restore
from switchboard.bus import InProcessBus
from switchboard.cli import main
from switchboard.db import create_engine, create_sessionmaker
from switchboard.errors import InvalidInput
from switchboard.migrate import current_revision, head_revision
from switchboard.tx import Database
from tests.conftest import PASSWORD, PG_ADMIN_URL, _need, create_user
from tests.customers.support import email_from, email_inbox, intake

TEXTS = ["退货流程是什么？", "Ünïcödé 👋🏽 and \u202eRTL", "2026-12-05T10:00:00", ""]


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    """A URL of a new, empty PostgreSQL database (no schema at all)."""
    _need("PostgreSQL", "127.0.0.1", 5432)
    name = f"sb_restore_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture
def sqlite_hub(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def seed(url: str) -> dict[str, int]:
    """A small but real hub: staff, an email inbox, customers (one merged into a NEWER
    one, so a row points forward in its own table), messages in several scripts, an
    article with versions."""
    engine = create_engine(url)
    db = Database(engine, create_sessionmaker(engine), InProcessBus())
    try:
        admin_id = await create_user(db, "admin@example.com", "admin", "Ada")
        inbox_id = await email_inbox(db)
        for n, body in enumerate(TEXTS, start=1):
            message = email_from(inbox_id, f"c{n}@mail.test", verified=True, n=n)
            await intake(db, message.__class__(**{**message.__dict__, "text": body or "x"}))

        async def merge_old_into_new(session: Any) -> None:
            ids = list((await session.execute(select(Customer.id).order_by(Customer.id))).scalars())
            await do_merge(session, survivor_id=ids[-1], merged_id=ids[0], actor_user_id=admin_id)

        await db.run(merge_old_into_new)
        await db.run(
            lambda s: do_create_article(
                s,
                {
                    "key": "returns",
                    "question": "How do I return?",
                    "answer_markdown": "**Easy**.",
                    "locale": "en",
                },
                author_user_id=admin_id,
                publish=True,
            )
        )
        return {"admin": admin_id}
    finally:
        await engine.dispose()


async def everything(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as the archive encodes values, keyed by column."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(lambda sync: metadata.reflect(sync))
            out: dict[str, list[dict[str, Any]]] = {}
            for table in metadata.sorted_tables:
                if table.name == "alembic_version":
                    continue
                order = list(table.primary_key.columns) or list(table.columns)
                rows = (await conn.execute(select(table).order_by(*order))).mappings()
                out[table.name] = [{k: _encode(v) for k, v in row.items()} for row in rows]
            return out
    finally:
        await engine.dispose()


async def test_sqlite_to_postgresql_and_back_keeps_every_row(
    sqlite_hub: str, fresh_postgres: str, tmp_path: Path
) -> None:
    await seed(sqlite_hub)
    original = await everything(sqlite_hub)
    assert len(original["messages"]) == len(TEXTS) and len(original["customers"]) == len(TEXTS)

    archive = tmp_path / "hub.jsonl.gz"
    made = await backup(sqlite_hub, archive)
    assert made.revision == head_revision() and made.rows["messages"] == len(TEXTS)
    assert os.stat(archive).st_mode & 0o077 == 0  # password hashes inside: owner only

    loaded = await restore(fresh_postgres, archive)
    assert loaded.rows == made.rows
    assert await current_revision(fresh_postgres) == head_revision()
    assert await everything(fresh_postgres) == original

    # The restored hub works: the password still logs in, and new rows get new ids.
    engine = create_engine(fresh_postgres)
    db = Database(engine, create_sessionmaker(engine), InProcessBus())
    try:
        async with db.reading() as session:
            user = await accounts.authenticate(session, "admin@example.com", PASSWORD)
        assert user is not None and user.role == "admin"
        inbox_id = await db.run(_first_inbox)
        result = await intake(db, email_from(inbox_id, "new@mail.test", verified=True, n=99))
        assert result.message_id > max(m["id"] for m in original["messages"])
    finally:
        await engine.dispose()

    # And back: PostgreSQL -> a new SQLite file, still the same rows.
    back = tmp_path / "back.jsonl.gz"
    await backup(fresh_postgres, back)
    sqlite_again = f"sqlite+aiosqlite:///{tmp_path / 'again.db'}"
    await restore(sqlite_again, back)
    restored = await everything(sqlite_again)
    assert len(restored["messages"]) == len(TEXTS) + 1
    assert [m["text"] for m in restored["messages"][: len(TEXTS)]] == [
        m["text"] for m in original["messages"]
    ]


async def _first_inbox(session: Any) -> int:
    return int((await session.execute(text("SELECT min(id) FROM inboxes"))).scalar_one())


async def test_restore_refuses_a_database_that_holds_data(sqlite_hub: str, tmp_path: Path) -> None:
    await seed(sqlite_hub)
    archive = tmp_path / "hub.jsonl.gz"
    await backup(sqlite_hub, archive)
    before = await everything(sqlite_hub)
    with pytest.raises(InvalidInput, match="already holds"):
        await restore(sqlite_hub, archive)
    assert await everything(sqlite_hub) == before


async def test_a_damaged_archive_loads_nothing(sqlite_hub: str, tmp_path: Path) -> None:
    await seed(sqlite_hub)
    archive = tmp_path / "hub.jsonl.gz"
    await backup(sqlite_hub, archive)
    lines = gzip.decompress(archive.read_bytes()).splitlines(keepends=True)

    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(gzip.compress(b"".join(lines[:-5])))
    target = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(InvalidInput, match="damaged"):
        await restore(target, truncated)
    assert all(not rows for rows in (await everything(target)).values())

    # A row edited to the wrong shape: refused the same way, nothing half-loaded.
    bad_row = [line if not line.startswith(b"[") else b"[1]\n" for line in lines]
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b"".join(bad_row)))
    with pytest.raises(InvalidInput, match="damaged"):
        await restore(target, broken)
    assert all(not rows for rows in (await everything(target)).values())

    for name, content in [("plain.txt", b"hello"), ("other.gz", gzip.compress(b'{"a":1}\n'))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InvalidInput, match="not a Switchboard backup"):
            await restore(target, tmp_path / name)


async def test_an_archive_from_a_newer_version_is_refused(sqlite_hub: str, tmp_path: Path) -> None:
    archive = tmp_path / "future.jsonl.gz"
    header = b'{"format":"switchboard-backup","version":1,"revision":"9999","tables":[]}\n'
    archive.write_bytes(gzip.compress(header + b'{"end":{}}\n'))
    with pytest.raises(InvalidInput, match="newer version"):
        await restore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", archive)


async def test_backup_reads_one_snapshot(
    sqlite_hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write committed while the backup is part-way through is not half in it."""
    await seed(sqlite_hub)
    path = sqlite_hub.removeprefix("sqlite+aiosqlite:///")
    real_dump_line = backup_module._dump_line

    def dump_line_then_write(out: Any, obj: Any) -> None:
        real_dump_line(out, obj)
        if isinstance(obj, dict) and obj.get("table") == "conversations":
            # Another process answers a customer while the backup streams (WAL allows it).
            with sqlite3.connect(path) as other:
                other.execute("UPDATE messages SET text = 'written during the backup'")

    monkeypatch.setattr(backup_module, "_dump_line", dump_line_then_write)
    archive = tmp_path / "snap.jsonl.gz"
    await backup(sqlite_hub, archive)
    monkeypatch.undo()

    assert {m["text"] for m in (await everything(sqlite_hub))["messages"]} == {
        "written during the backup"
    }
    restored_url = f"sqlite+aiosqlite:///{tmp_path / 'snap.db'}"
    await restore(restored_url, archive)
    texts = [m["text"] for m in (await everything(restored_url))["messages"]]
    assert "written during the backup" not in texts and len(texts) == len(TEXTS)


def test_cli_backup_and_restore(
    sqlite_hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import asyncio

    asyncio.run(seed(sqlite_hub))
    archive = tmp_path / "cli.jsonl.gz"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", sqlite_hub)
    monkeypatch.setenv("SWITCHBOARD_VAR_DIR", str(tmp_path / "var"))
    assert main(["backup", str(archive)]) == 0
    assert "backed up" in capsys.readouterr().out
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    assert main(["restore", str(archive)]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["restore", str(archive)]) == 1  # the second time the target holds data
    assert "empty database" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "missing.gz")]) == 1
    assert "no such file" in capsys.readouterr().err


async def test_a_file_left_at_the_archive_path_cannot_weaken_or_redirect_it(
    sqlite_hub: str, tmp_path: Path
) -> None:
    """A stale world-readable partial file or a planted symlink beside the archive: the
    archive is still written fresh with mode 0600 and the symlink's target untouched."""
    await seed(sqlite_hub)
    archive = tmp_path / "hub.jsonl.gz"
    stale = tmp_path / "hub.jsonl.gz.partial"
    stale.write_bytes(b"old")
    stale.chmod(0o644)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / ".hub.jsonl.gz.partial").symlink_to(victim)
    await backup(sqlite_hub, archive)
    assert not archive.is_symlink() and os.stat(archive).st_mode & 0o077 == 0
    assert victim.read_text() == "keep me"
    # An existing archive (a symlink included) is replaced, never written through.
    archive.unlink()
    archive.symlink_to(victim)
    await backup(sqlite_hub, archive)
    assert not archive.is_symlink() and victim.read_text() == "keep me"
