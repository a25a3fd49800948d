"""`switchboard backup FILE` and `switchboard restore FILE`: the whole database in one file.

The archive is gzip-compressed JSON lines: a header (format, schema revision, where it
came from), then per table a line naming its columns followed by one line per row, then
a trailer with every table's row count. It is read back by column type, not by guessing
from values, so text that looks like a date stays text.

- **Consistent**: every table is read in one snapshot (REPEATABLE READ, read only, on
  PostgreSQL; one read transaction on SQLite, whose WAL keeps the snapshot), so a backup
  taken while the hub serves is a state the hub really was in.
- **Portable**: tables are read and written through reflection, so an archive made on
  the embedded SQLite restores into PostgreSQL (the way to move a trial onto a production
  database) and back, and an archive of an older schema restores: the target is migrated
  to the archive's revision, loaded, then migrated to this version's head.
- **All or nothing**: the restore runs in one transaction and checks the trailer's
  counts, so a truncated or damaged file loads nothing. It only restores into a database
  with no rows, never over live data.

The archive holds password hashes, session hashes and encrypted channel credentials
(readable with the same `SWITCHBOARD_SECRET_KEY` only): it is written with mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard import migrate
from switchboard.db import READ_ONLY, create_engine
from switchboard.errors import InvalidInput

FORMAT = "switchboard-backup"
VERSION = 1
BATCH = 1000
SKIPPED = frozenset({"alembic_version"})


@dataclass
class Summary:
    revision: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        # Naive values are UTC: that is how the hub stores them on SQLite.
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(column_type: Any, to_sqlite: bool) -> Any:
    """How to turn an archived value back into what the target column takes."""
    if isinstance(column_type, DateTime):

        def as_datetime(raw: str) -> datetime:
            value = datetime.fromisoformat(raw)
            # SQLite keeps naive UTC text; PostgreSQL takes the aware value.
            return value.astimezone(UTC).replace(tzinfo=None) if to_sqlite else value

        return as_datetime
    if isinstance(column_type, Date):
        return date.fromisoformat
    if isinstance(column_type, LargeBinary):
        return base64.b64decode
    if isinstance(column_type, Numeric) and not isinstance(column_type, Integer):
        return Decimal
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, JSON):
        return None
    return None


async def _reflect(conn: AsyncConnection) -> MetaData:
    metadata = MetaData()
    await conn.run_sync(lambda sync: metadata.reflect(sync))
    return metadata


def _tables(metadata: MetaData) -> list[Table]:
    return [t for t in metadata.sorted_tables if t.name not in SKIPPED]


@asynccontextmanager
async def _snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            conn = await conn.execution_options(**READ_ONLY)
        async with conn.begin():
            yield conn


def _dump_line(out: gzip.GzipFile, obj: Any) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())
    out.write(b"\n")


async def backup(database_url: str, path: Path) -> Summary:
    """Write the whole database to `path` (atomically: a partial file never replaces it)."""
    revision = await migrate.current_revision(database_url)
    if revision is None:
        raise InvalidInput("the database has no schema yet: nothing to back up")
    engine = create_engine(database_url, pool_size=1)
    summary = Summary(revision=revision)
    # A fresh, randomly named file (O_EXCL, mode 0600, symlinks never followed) beside the
    # target, renamed over it when complete: a file left by an earlier run, or planted,
    # cannot lend the archive its mode or redirect it elsewhere.
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
            async with _snapshot(engine) as conn:
                tables = _tables(await _reflect(conn))
                _dump_line(
                    out,
                    {
                        "format": FORMAT,
                        "version": VERSION,
                        "revision": revision,
                        "dialect": engine.dialect.name,
                        "created_at": datetime.now(UTC).isoformat(),
                        "tables": [t.name for t in tables],
                    },
                )
                for table in tables:
                    columns = [c.name for c in table.columns]
                    _dump_line(out, {"table": table.name, "columns": columns})
                    count = 0
                    order = list(table.primary_key.columns) or list(table.columns)
                    result = await conn.stream(select(table).order_by(*order))
                    async for rows in result.partitions(BATCH):
                        for row in rows:
                            _dump_line(out, [_encode(v) for v in row])
                        count += len(rows)
                    summary.rows[table.name] = count
            _dump_line(out, {"end": summary.rows})
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    finally:
        await engine.dispose()
    return summary


@dataclass
class _Archive:
    header: dict[str, Any]
    lines: Iterator[bytes]


def _open_archive(path: Path) -> tuple[gzip.GzipFile, _Archive]:
    bad = InvalidInput(f"{path} is not a Switchboard backup")
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    stream = gzip.GzipFile(path, "rb")
    try:
        header = json.loads(stream.readline())
    except (OSError, EOFError, ValueError):
        stream.close()
        raise bad from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        stream.close()
        raise bad
    if header.get("version") != VERSION or not isinstance(header.get("revision"), str):
        stream.close()
        raise InvalidInput(f"{path} is a backup of a format this version cannot read")
    return stream, _Archive(header, iter(stream))


async def _row_count(conn: AsyncConnection, tables: list[Table]) -> int:
    total = 0
    for table in tables:
        total += (await conn.execute(select(func.count()).select_from(table))).scalar_one()
    return total


async def restore(database_url: str, path: Path) -> Summary:
    """Load the archive at `path` into an empty database, then migrate it to head."""
    stream, archive = _open_archive(path)
    with stream:
        revision: str = archive.header["revision"]
        known = {s.revision for s in migrate.revisions()}
        if revision not in known:
            raise InvalidInput(
                f"the backup is at schema revision {revision}, which this version of "
                "Switchboard does not know (it was made by a newer version)"
            )
        await _prepare_target(database_url, revision)
        engine = create_engine(database_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                summary = await _load(conn, archive, revision, engine.dialect.name)
        except (ValueError, KeyError, TypeError, EOFError, OSError) as exc:
            raise InvalidInput(f"{path} is damaged; nothing was restored ({exc})") from None
        finally:
            await engine.dispose()
    await migrate.upgrade(database_url)
    return summary


async def _prepare_target(database_url: str, revision: str) -> None:
    """Bring an EMPTY target to the archive's revision; refuse one holding any rows."""
    current = await migrate.current_revision(database_url)
    if current is not None:
        engine = create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                rows = await _row_count(conn, _tables(await _reflect(conn)))
        finally:
            await engine.dispose()
        if rows:
            raise InvalidInput(
                f"the target database already holds {rows} rows: restore only into an "
                "empty database (create a new one, or drop this one's data first)"
            )
        if current != revision:
            # Empty tables: moving the schema either way loses nothing.
            order = [s.revision for s in migrate.revisions()]
            if order.index(current) > order.index(revision):
                await migrate.downgrade(database_url, revision)
                return
    await migrate.upgrade(database_url, revision)


async def _load(conn: AsyncConnection, archive: _Archive, revision: str, dialect: str) -> Summary:
    tables = {t.name: t for t in _tables(await _reflect(conn))}
    summary = Summary(revision=revision)
    loaded: set[str] = set()
    # Foreign keys to a table not loaded yet (a row pointing at a later row of its own
    # table, such as a customer merged into a newer one): NULL first, set at the end.
    later: list[tuple[Table, dict[str, Any], dict[str, Any]]] = []
    table: Table | None = None
    columns: list[str] = []
    decoders: list[Any] = []
    deferred: set[str] = set()
    batch: list[dict[str, Any]] = []
    ended = False

    async def flush() -> None:
        if batch and table is not None:
            await conn.execute(insert(table), batch)
            batch.clear()

    for raw in archive.lines:
        item = json.loads(raw)
        if isinstance(item, list):
            if table is None or len(item) != len(columns):
                raise ValueError("a row does not match its table's columns")
            row = {
                name: (decode(value) if decode is not None and value is not None else value)
                for name, decode, value in zip(columns, decoders, item, strict=True)
            }
            if deferred:
                held = {name: row[name] for name in deferred if row[name] is not None}
                if held:
                    key = {c.name: row[c.name] for c in table.primary_key.columns}
                    later.append((table, key, held))
                    row.update(dict.fromkeys(held))
            batch.append(row)
            summary.rows[table.name] += 1
            if len(batch) >= BATCH:
                await flush()
        elif "table" in item:
            await flush()
            if table is not None:
                loaded.add(table.name)
            table = tables.get(item["table"])
            if table is None:
                raise ValueError(f"table {item['table']} is not in revision {revision}")
            columns = list(item["columns"])
            unknown = set(columns) - {c.name for c in table.columns}
            if unknown:
                raise ValueError(f"{table.name} has no column {sorted(unknown)[0]}")
            decoders = [_decoder(table.columns[c].type, dialect == "sqlite") for c in columns]
            deferred = {
                fk.parent.name
                for fk in table.foreign_keys
                if fk.column.table.name not in loaded and fk.parent.name in columns
            }
            summary.rows[table.name] = 0
        elif "end" in item:
            await flush()
            ended = True
            if item["end"] != summary.rows:
                raise ValueError("row counts do not match the trailer")
    if not ended:
        raise EOFError("the file ends before its trailer")
    for target, key, values in later:
        condition = [target.c[name] == value for name, value in key.items()]
        await conn.execute(update(target).where(*condition).values(**values))
    if dialect == "postgresql":
        await _reset_sequences(conn, list(tables.values()))
    return summary


async def _reset_sequences(conn: AsyncConnection, tables: list[Table]) -> None:
    """New rows after a restore get ids above the restored ones."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        # setval(seq, max, is_called): the next id is max + 1, or 1 for an empty table.
        # A primary key with no sequence gives NULL, and setval(NULL, ...) does nothing.
        top = func.max(pk[0])
        sequence = func.pg_get_serial_sequence(f'"{table.name}"', pk[0].name)
        await conn.execute(
            select(func.setval(sequence, func.coalesce(top, 1), top.is_not(None))).select_from(
                table
            )
        )
