"""What `switchboard kb …` and `switchboard demo` do with the knowledge base."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.io import apply_rows, export_records, read_file, write_file
from knowledge_base.rasa_export import write_rasa_project
from knowledge_base.service import count_articles, published_training_set
from switchboard.settings import Settings
from switchboard.tx import Database

DEMO_KB = Path(__file__).with_name("demo_kb.json")


async def import_file(db: Database, path: Path, note: str | None = None) -> str:
    # Read and check the whole file before the transaction: nothing is half imported.
    rows = await asyncio.to_thread(read_file, path)

    async def work(session: AsyncSession) -> str:
        result = await apply_rows(
            session, rows, author_user_id=None, note=note or f"imported from {path.name}"
        )
        return (
            f"{result.created} created, {result.updated} updated,"
            f" {result.unchanged} unchanged from {path.name}"
        )

    return await db.run(work)


async def export_file(db: Database, path: Path) -> str:
    async with db.reading() as session:
        records = await export_records(session)
    await asyncio.to_thread(write_file, path, records)
    return f"{len(records)} articles written to {path}"


async def export_rasa(db: Database, directory: Path) -> str:
    async with db.reading() as session:
        articles = await published_training_set(session)
    written = await asyncio.to_thread(write_rasa_project, directory, articles)
    names = ", ".join(p.name for p in written)
    return f"{len(articles)} published articles written to {directory} ({names})"


async def seed_demo(db: Database) -> None:
    """The bilingual demo knowledge base, once (an admin's edits are never overwritten)."""
    async with db.reading() as session:
        if await count_articles(session):
            return
    await import_file(db, DEMO_KB, note="demo knowledge base")


async def run(settings: Settings, command: str, target: str) -> str:
    # Every package's tables, so the foreign keys of a version (its author, a user) resolve
    # in a process that imported nothing else: without it a CLI import failed at flush.
    import switchboard.schema  # noqa: F401
    from switchboard.bus import create_bus
    from switchboard.db import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    # With Redis, the import's PublishedArticlesChanged reaches every running process, so
    # their bots retrain at once; publishing only, so no listener is started. Without
    # Redis (or with Redis down) nobody hears it, and each process's bot finds the
    # change when it next polls the knowledge base.
    bus = create_bus(settings.redis_url, settings.redis_prefix)
    try:
        db = Database(engine, create_sessionmaker(engine), bus)
        path = Path(target)
        if command == "import":
            return await import_file(db, path)
        if command == "export":
            return await export_file(db, path)
        return await export_rasa(db, path)
    finally:
        await bus.close()
        await engine.dispose()
