"""`INSERT … ON CONFLICT DO NOTHING` on both databases, for races a constraint settles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignoring_conflict(
    session: AsyncSession, table: Table, values: Mapping[str, Any], conflict: Sequence[str]
) -> int | None:
    """Insert a row unless one with the same `conflict` columns exists; return the new id."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = (
        module.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
