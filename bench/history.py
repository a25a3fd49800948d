"""The inbox's cross-channel history (`GET /api/v1/conversations/{id}/history`) at
1,000,000 messages on PostgreSQL: the page query's plan and time with and without the
`ix_messages_conversation_created` index (migration 0016), for a customer with many
messages across many conversations and for an ordinary one.

    nice -n 10 .venv/bin/python -m bench.history [--customers 100000] [--per 10]
        [--heavy-conversations 40] [--heavy-per 500] [--runs 30] [--plans]

A fresh database (migrated, then the index dropped for the "without" half) is bulk-loaded
with generate_series: `--customers` customers with one web-chat conversation of `--per`
messages each, and customer 1 with `--heavy-conversations` more conversations (web chat
and Telegram by turns) of `--heavy-per` messages each, times spread over a year; half the
conversations have a ticket in one of 10 queues. The query is the endpoint's own
(`web.conversation_api.history_query`, newest page of 101), run directly through asyncpg
for a supervisor (sees all) and an agent in one queue; both shapes are timed: the
LATERAL one PostgreSQL uses and the plain one SQLite uses. Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from sqlalchemy.dialects import postgresql

from bench.intake import fresh_target, percentile
from switchboard.models import Role, User
from web.conversation_api import history_query

INDEX = "ix_messages_conversation_created"
INDEX_SQL = f"CREATE INDEX {INDEX} ON messages (conversation_id, created_at, id)"


def _sql(user: User, customer_id: int, *, lateral: bool) -> str:
    query = history_query(customer_id, user, None, 101, lateral=lateral)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


async def _seed(conn: Any, args: argparse.Namespace) -> None:
    await conn.execute(
        "INSERT INTO users (id, email, name, role, password_hash, active, locale, timezone,"
        " created_at) SELECT g, 'a' || g || '@bench.invalid', 'Agent ' || g,"
        " CASE WHEN g = 1 THEN 'supervisor' ELSE 'agent' END, 'x', true, 'en', 'UTC', now()"
        " FROM generate_series(1, 11) g"
    )
    for q in range(1, 11):
        await conn.execute(
            "INSERT INTO queues (id, name, strategy, created_at, updated_at)"
            " VALUES ($1, $2, 'round_robin', now(), now())",
            q,
            f"queue {q}",
        )
    await conn.execute(
        "INSERT INTO queue_members (queue_id, user_id, added_at)"
        " SELECT (g % 10) + 1, g, now() FROM generate_series(2, 11) g"
    )
    await conn.execute(
        "INSERT INTO inboxes (id, key, kind, name, public_key, bot_enabled, config, created_at,"
        " updated_at) VALUES (1000, 'chat', 'webchat', 'Chat', 'pk1', false, '{}', now(), now()),"
        " (1001, 'tg', 'telegram', 'Telegram', 'pk2', false, '{}', now(), now())"
    )
    await conn.execute(
        "INSERT INTO customers (id, name, email, attributes, created_at)"
        " SELECT g, 'Customer ' || g, 'c' || g || '@example.com', '{}', now()"
        " FROM generate_series(1, $1) g",
        args.customers,
    )
    await conn.execute(
        "INSERT INTO conversations (id, inbox_id, customer_id, thread_key, channel, status,"
        " last_seq, unread_count, created_at) SELECT g, 1000, g, 'c-' || g, 'webchat', 'open',"
        " $2, 0, now() FROM generate_series(1, $1) g",
        args.customers,
        args.per,
    )
    await conn.execute(
        "INSERT INTO conversations (id, inbox_id, customer_id, thread_key, channel, status,"
        " last_seq, unread_count, created_at) SELECT $1 + g,"
        " CASE WHEN g % 2 = 0 THEN 1000 ELSE 1001 END, 1, 'h-' || g,"
        " CASE WHEN g % 2 = 0 THEN 'webchat' ELSE 'telegram' END, 'open', $2, 0, now()"
        " FROM generate_series(1, $3) g",
        args.customers,
        args.heavy_per,
        args.heavy_conversations,
    )
    await conn.execute(
        "INSERT INTO messages (id, conversation_id, inbox_id, seq, direction, author_kind, text,"
        " private, delivery_status, created_at, automatic)"
        " SELECT m, ((m - 1) / $2) + 1, 1000, ((m - 1) % $2) + 1, 'in', 'customer',"
        " 'hello ' || m, false, 'received',"
        " now() - interval '90 days' + random() * interval '90 days', false"
        " FROM generate_series(1, $1::int * $2::int) m",
        args.customers,
        args.per,
    )
    await conn.execute(
        "INSERT INTO messages (id, conversation_id, inbox_id, seq, direction, author_kind, text,"
        " private, delivery_status, created_at, automatic)"
        " SELECT $1 + m, $2 + ((m - 1) / $3) + 1, 1000, ((m - 1) % $3) + 1, 'in', 'customer',"
        " 'again ' || m, false, 'received',"
        " now() - interval '365 days' + random() * interval '365 days', false"
        " FROM generate_series(1, $3::int * $4::int) m",
        args.customers * args.per,
        args.customers,
        args.heavy_per,
        args.heavy_conversations,
    )
    await conn.execute(
        "INSERT INTO tickets (id, customer_id, subject, status, priority, source, queue_id,"
        " created_at, updated_at) SELECT id, customer_id, 'ticket', 'open', 'normal', 'inbox',"
        " CASE WHEN customer_id = 1 THEN 3 ELSE (id % 10) + 1 END, now(), now()"
        " FROM conversations WHERE id % 2 = 1 OR customer_id = 1"
    )
    await conn.execute(
        "INSERT INTO ticket_conversations (ticket_id, conversation_id, open_conversation_id,"
        " linked_at) SELECT id, id, id, now() FROM tickets"
    )


async def _time(conn: Any, sql: str, runs: int) -> tuple[float, float, str]:
    for _ in range(3):
        await conn.fetch(sql)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await conn.fetch(sql)
        times.append((time.perf_counter() - started) * 1000)
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql))
    return percentile(times, 50) or 0.0, percentile(times, 99) or 0.0, plan


async def run(args: argparse.Namespace) -> None:
    import asyncpg

    async with fresh_target("postgres") as target:
        conn = await asyncpg.connect(target.raw_dsn)
        try:
            started = time.perf_counter()
            await _seed(conn, args)
            await conn.execute("VACUUM ANALYZE")
            total = await conn.fetchval("SELECT count(*) FROM messages")
            print(f"seeded {total:,} messages in {time.perf_counter() - started:.0f} s")
            supervisor = User(id=1, role=Role.SUPERVISOR, name="S", email="s@bench.invalid")
            agent = User(id=2, role=Role.AGENT, name="A", email="a@bench.invalid")  # queue 3
            for label, ddl in (("without 0016", f"DROP INDEX {INDEX}"), ("with 0016", INDEX_SQL)):
                await conn.execute(ddl)
                await conn.execute("VACUUM ANALYZE messages")
                for who, user in (("supervisor", supervisor), ("agent", agent)):
                    for customer, what in ((1, "many messages"), (777, "ordinary")):
                        for lateral in (True, False):
                            sql = _sql(user, customer, lateral=lateral)
                            p50, p99, plan = await _time(conn, sql, args.runs)
                            shape = "lateral (PostgreSQL)" if lateral else "plain (SQLite's)"
                            print(
                                f"{label:13} {who:10} {what:13} {shape:21}"
                                f" p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
                            )
                            if args.plans and customer == 1 and lateral:
                                print(plan)
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--per", type=int, default=10)
    parser.add_argument("--heavy-conversations", type=int, default=40)
    parser.add_argument("--heavy-per", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE plans")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
