"""Agent inbox benchmark on PostgreSQL: the list, opening a conversation and search at
1,000,000 messages and 100,000 customers; websocket fan-out to 500 agents on two hubs.

    nice -n 10 .venv/bin/python -m bench.inbox [--customers 100000]
        [--messages-per-conversation 10] [--agents 500] [--queries 200] [--fanout 20] [--json]
        [--only fanout|search]

A fresh database (migrated) is bulk-loaded with generate_series: `--agents` agents in 10
queues and one supervisor; `--customers` customers (name, email, phone), one web-chat
conversation each with `--messages-per-conversation` messages (in and out by turns; the
texts come from 40 English and Chinese sentences plus an order number, so common words
match ~10% of all messages and an order number ~20); half the conversations have an
active ticket in a queue (a third of those assigned to one of the queue's agents); the
rest have none (everyone's). The message search index (`message_terms`) is filled with
the same terms the hub makes (`conversations.search.message_terms`), by SQL from the
sentences' precomputed terms.

Two hubs (`bench._server`, each its own process, workers on) share the database and one
Redis. Measured over HTTP with API tokens, one request at a time (p50/p99, ms):

1. list: GET /api/v1/inbox/conversations for random agents (views mine, unassigned,
   my_queues, all) and the supervisor (all); GET /api/v1/inbox/counts (every view's
   total and unread, 8 capped counts);
2. open: what the pane asks when a conversation opens: GET /conversations/{id} then
   GET /conversations/{id}/messages, random visible conversations;
3. search: GET /api/v1/search (messages, customers, tickets at once) for a rare order
   number, a common English word, two words, a Chinese word, a customer's email part;
4. fan-out: `--agents` agent sockets on /inbox/ws, half on each hub; an agent replies in
   a conversation everyone may see (`--fanout` times, one at a time); per reply, the time
   from the POST until each socket has its `message.created` frame: p50/p99/max over all.

Baselines in the same run: GET /api/v1/me (token check + JSON, the cheapest staff
route) on the same hub, and a primary-key SELECT of one message through asyncpg. It
prints figures and never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from bench.intake import Hub, fresh_target, percentile

QUEUES = 10
SENTENCES = [
    "I need a refund for my last order",
    "Where is my parcel? It has not arrived yet",
    "The invoice shows the wrong amount",
    "Can I change the delivery address please",
    "My account is locked after the password reset",
    "Thanks, that solved it",
    "The app crashes when I open the settings page",
    "How long does shipping to Canada take",
    "Please cancel my subscription before renewal",
    "I was charged twice this month",
    "The discount code does not work at checkout",
    "Do you ship to Singapore",
    "The item arrived broken, can you send a replacement",
    "What are your opening hours on Sunday",
    "I would like to talk to a person",
    "Our order has been stuck in processing for a week",
    "Can you resend the confirmation email",
    "The tracking number is not valid",
    "We are happy with the service, thank you",
    "Is there a student discount",
    "你好，我的退款什么时候到账",
    "我想修改收货地址",
    "发票金额不对",
    "包裹还没有收到",
    "请帮我取消订阅",
    "我被重复扣款了",
    "优惠码无法使用",
    "请问周末营业吗",
    "商品损坏了，可以换货吗",
    "谢谢，问题已经解决",
    "請問退款要多久",
    "我想找人工客服",
    "We will look into the refund right away",
    "Your parcel left our warehouse this morning",
    "I have corrected the invoice and sent it again",
    "The address has been updated",
    "Your subscription is cancelled",
    "Sorry for the double charge, it is refunded",
    "我们已经为您处理退款",
    "您的包裹今天已经发出",
]
ORDER_MOD = 50_000


def _ms(values: list[float]) -> dict[str, Any]:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return {
        "n": len(values),
        "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
        "max_ms": round(max(values) * 1000, 2) if values else None,
    }


async def _seed(dsn: str, customers: int, per: int, agents: int) -> dict[str, Any]:
    import asyncpg

    from conversations.search import message_terms

    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        await conn.execute(
            """
            INSERT INTO users (id, email, name, role, password_hash, active, locale, timezone,
                               created_at)
            SELECT g, 'agent' || g || '@bench.invalid', 'Agent ' || g,
                   CASE WHEN g = $1::int + 1 THEN 'supervisor' ELSE 'agent' END,
                   'x', true, 'en', 'UTC', now()
            FROM generate_series(1, $1::int + 1) g
            """,
            agents,
        )
        for q in range(1, QUEUES + 1):
            await conn.execute(
                "INSERT INTO queues (id, name, strategy, created_at, updated_at) "
                "VALUES ($1, $2, 'round_robin', now(), now())",
                q,
                f"queue {q}",
            )
        await conn.execute(
            "INSERT INTO queue_members (queue_id, user_id, added_at) "
            "SELECT (g % $2) + 1, g, now() FROM generate_series(1, $1) g",
            agents,
            QUEUES,
        )
        await conn.execute(
            "INSERT INTO inboxes (id, key, kind, name, public_key, bot_enabled, config,"
            " created_at, updated_at) VALUES (1000, 'bench', 'webchat', 'Bench chat',"
            " 'bench-public-key', false, '{}', now(), now())"
        )
        await conn.execute(
            """
            INSERT INTO customers (id, name, email, phone, attributes, created_at)
            SELECT g, CASE WHEN g % 5 = 0 THEN '客户' || g ELSE 'Customer ' || g END,
                   'c' || g || '@example.com', '+1 555 ' || lpad(g::text, 7, '0'), '{}',
                   now() - interval '90 days'
            FROM generate_series(1, $1) g
            """,
            customers,
        )
        # One web-chat identity each (searched too: external id and display name).
        await conn.execute(
            """
            INSERT INTO customer_identities (customer_id, inbox_id, channel, external_id,
                                             display_name, reachable, verified, created_at)
            SELECT g, 1000, 'webchat', 'visitor-' || md5(g::text), NULL, true, false, now()
            FROM generate_series(1, $1) g
            """,
            customers,
        )
        # Conversation g belongs to customer g; activity spread over 90 days.
        await conn.execute(
            """
            INSERT INTO conversations (id, inbox_id, customer_id, thread_key, channel, status,
                                       last_seq, last_message_at, last_preview, unread_count,
                                       created_at)
            SELECT g, 1000, g, 'bench-' || g, 'webchat',
                   CASE WHEN g % 7 = 0 THEN 'closed' ELSE 'open' END, $2,
                   now() - interval '90 days' + g * (interval '90 days' / $1), 'preview', 0,
                   now() - interval '90 days'
            FROM generate_series(1, $1) g
            """,
            customers,
            per,
        )
        sentences = len(SENTENCES)
        await conn.execute("CREATE TEMP TABLE sentences (k int PRIMARY KEY, body text NOT NULL)")
        await conn.executemany("INSERT INTO sentences VALUES ($1, $2)", list(enumerate(SENTENCES)))
        # Message m: conversation ((m - 1) / per) + 1, seq ((m - 1) % per) + 1; customer
        # and agent by turns; a sentence and an order number.
        messages_started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO messages (id, conversation_id, inbox_id, seq, direction, author_kind,
                                  text, private, delivery_status, created_at, automatic)
            SELECT m, ((m - 1) / $2) + 1, 1000, ((m - 1) % $2) + 1,
                   CASE WHEN m % 2 = 1 THEN 'in' ELSE 'out' END,
                   CASE WHEN m % 2 = 1 THEN 'customer' ELSE 'agent' END,
                   s.body || ' (order ' || (m % $4) || ')', false,
                   CASE WHEN m % 2 = 1 THEN 'received' ELSE 'sent' END,
                   now() - interval '90 days' + (((m - 1) / $2) + 1) * (interval '90 days' / $3),
                   false
            FROM generate_series(1, $1::int * $2::int) m
            JOIN sentences s ON s.k = (m::bigint * 7919) % $5
            """,
            customers,
            per,
            customers,
            ORDER_MOD,
            sentences,
        )
        messages_s = time.perf_counter() - messages_started
        # The search index: each sentence's terms (made by the hub's own tokeniser), joined
        # to the messages by sentence, plus each message's order number and "order".
        await conn.execute("CREATE TEMP TABLE sentence_terms (k int, term text)")
        rows = [
            (k, term)
            for k, body in enumerate(SENTENCES)
            for term in message_terms(body + " (order)")
        ]
        await conn.executemany("INSERT INTO sentence_terms VALUES ($1, $2)", rows)
        terms_started = time.perf_counter()
        # Bulk load without the keys, then build them once (sorted): far faster than
        # maintaining two B-trees and checking a foreign key row by row.
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(
            "ALTER TABLE message_terms DROP CONSTRAINT fk_message_terms_message_id_messages,"
            " DROP CONSTRAINT pk_message_terms"
        )
        await conn.execute("DROP INDEX ix_message_terms_message_id")
        await conn.execute(
            """
            INSERT INTO message_terms (term, message_id)
            SELECT st.term, m FROM generate_series(1, $1::int * $2::int) m
            JOIN sentence_terms st ON st.k = (m::bigint * 7919) % $3
            UNION ALL
            SELECT (m % $4)::text, m FROM generate_series(1, $1::int * $2::int) m
            """,
            customers,
            per,
            sentences,
            ORDER_MOD,
        )
        await conn.execute(
            "ALTER TABLE message_terms ADD CONSTRAINT pk_message_terms"
            " PRIMARY KEY (term, message_id)"
        )
        await conn.execute("CREATE INDEX ix_message_terms_message_id ON message_terms (message_id)")
        await conn.execute(
            "ALTER TABLE message_terms ADD CONSTRAINT fk_message_terms_message_id_messages"
            " FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE"
        )
        terms_s = time.perf_counter() - terms_started
        total = customers * per
        await conn.execute(
            "INSERT INTO search_index_state (name, last_id) VALUES ('messages', $1)", total
        )
        # Tickets: odd conversations have an active ticket in queue (g % 10) + 1; every
        # third of those is assigned to an agent of that queue.
        await conn.execute(
            """
            INSERT INTO tickets (id, customer_id, subject, status, priority, source, queue_id,
                                 assignee_user_id, created_at, updated_at)
            SELECT g, g, 'Conversation ' || g,
                   (ARRAY['new','open','pending','on_hold'])[1 + (g / 2) % 4],
                   (ARRAY['low','normal','normal','high','urgent'])[1 + (g / 2) % 5],
                   'inbox', (g % $2) + 1,
                   -- agent a is in queue (a % 10) + 1 and `--agents` is a multiple of
                   -- 10, so agent g % agents (0 read as agents) is in ticket g's queue
                   CASE WHEN g % 3 = 0 THEN COALESCE(NULLIF(g % $3, 0), $3) END,
                   now(), now()
            FROM generate_series(1, $1) g WHERE g % 2 = 1
            """,
            customers,
            QUEUES,
            agents,
        )
        await conn.execute(
            """
            INSERT INTO ticket_conversations (ticket_id, conversation_id, open_conversation_id,
                                              linked_at)
            SELECT id, id, id, now() FROM tickets
            """
        )
        for table in ("users", "queues", "customers", "conversations", "messages", "tickets"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608 (constants)
            for t in (
                "customers",
                "customer_identities",
                "conversations",
                "messages",
                "message_terms",
                "tickets",
            )
        }
        return {
            **counts,
            "seed_s": round(time.perf_counter() - started, 1),
            "messages_insert_s": round(messages_s, 1),
            "terms_insert_s": round(terms_s, 1),
        }
    finally:
        await conn.close()


async def _index_customers_and_tickets(url: str) -> dict[str, Any]:
    """The customer and ticket search index, as migration 0017 fills it (in Python, by
    the hub's own term rules): the bulk load above bypassed the services that write it."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from conversations.search_terms import backfill

    engine = create_async_engine(url)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            customers, tickets = await conn.run_sync(backfill)
            await conn.exec_driver_sql("ANALYZE customer_terms")
            await conn.exec_driver_sql("ANALYZE ticket_terms")
            rows: Any = (
                await conn.exec_driver_sql(
                    "SELECT (SELECT count(*) FROM customer_terms),"
                    " (SELECT count(*) FROM ticket_terms)"
                )
            ).one()
    finally:
        await engine.dispose()
    return {
        "backfill_s": round(time.perf_counter() - started, 1),
        "customers": customers,
        "tickets": tickets,
        "customer_terms": rows[0],
        "ticket_terms": rows[1],
    }


async def _tokens(url: str, user_ids: list[int]) -> dict[int, str]:
    from sqlalchemy import select

    from bench.intake import app_db_call
    from switchboard import accounts
    from switchboard.models import User

    async def work(session: Any) -> dict[int, str]:
        users = (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars()
        return {u.id: await accounts.do_create_api_token(session, u, "bench") for u in users}

    result: dict[int, str] = await app_db_call(url, work)
    return result


async def _timed_get(http: Any, url: str, token: str) -> float:
    t0 = time.perf_counter()
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {await response.text()}")
    return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import asyncpg

    out: dict[str, Any] = {}
    rng = random.Random(11)
    agents = args.agents
    supervisor = agents + 1
    customers = args.customers
    async with fresh_target("postgres") as target:
        out["seed"] = await _seed(target.raw_dsn, customers, args.messages_per_conversation, agents)
        out["seed"]["search_terms"] = await _index_customers_and_tickets(target.app_url)
        tokens = await _tokens(target.app_url, list(range(1, agents + 2)))
        hubs = [Hub(target), Hub(target)]
        for n, hub in enumerate(hubs):
            hub.log_path = target.workdir / f"server{n}.log"
            await hub.start()
        try:
            async with aiohttp.ClientSession() as http:
                base = hubs[0].base
                one = tokens[1]
                # Warm-up: a few of each, not timed.
                for _ in range(5):
                    await _timed_get(http, f"{base}/api/v1/me", one)
                    await _timed_get(http, f"{base}/api/v1/inbox/conversations", one)

                # Baselines.
                out["baseline_http_me"] = _ms(
                    [await _timed_get(http, f"{base}/api/v1/me", one) for _ in range(args.queries)]
                )
                conn = await asyncpg.connect(target.raw_dsn)
                try:
                    pk = []
                    total = customers * args.messages_per_conversation
                    for _ in range(args.queries):
                        t0 = time.perf_counter()
                        await conn.fetchrow(
                            "SELECT * FROM messages WHERE id = $1", rng.randint(1, total)
                        )
                        pk.append(time.perf_counter() - t0)
                    out["baseline_pk_select"] = _ms(pk)
                finally:
                    await conn.close()

                if args.only != "fanout":  # parts 1-3 (3 alone: --only search)
                    if args.only != "search":
                        # 1. The list, per view.
                        for view in ("mine", "unassigned", "my_queues", "all"):
                            times = [
                                await _timed_get(
                                    http,
                                    f"{base}/api/v1/inbox/conversations?view={view}",
                                    tokens[rng.randint(1, agents)],
                                )
                                for _ in range(args.queries)
                            ]
                            out[f"list_agent_{view}"] = _ms(times)
                        out["list_supervisor_all"] = _ms(
                            [
                                await _timed_get(
                                    http, f"{base}/api/v1/inbox/conversations", tokens[supervisor]
                                )
                                for _ in range(args.queries)
                            ]
                        )
                        out["list_agent_filtered"] = _ms(
                            [
                                await _timed_get(
                                    http,
                                    f"{base}/api/v1/inbox/conversations?view=my_queues&priority=urgent"
                                    "&status=open",
                                    tokens[rng.randint(1, agents)],
                                )
                                for _ in range(args.queries)
                            ]
                        )
                        out["counts_agent"] = _ms(
                            [
                                await _timed_get(
                                    http,
                                    f"{base}/api/v1/inbox/counts",
                                    tokens[rng.randint(1, agents)],
                                )
                                for _ in range(max(20, args.queries // 4))
                            ]
                        )
                        out["counts_supervisor"] = _ms(
                            [
                                await _timed_get(
                                    http, f"{base}/api/v1/inbox/counts", tokens[supervisor]
                                )
                                for _ in range(max(20, args.queries // 4))
                            ]
                        )

                        # 2. Opening a conversation (agents: an unticketed one, visible to all).
                        opens = []
                        for _ in range(args.queries):
                            cid = rng.randrange(2, customers + 1, 2)
                            token = tokens[rng.randint(1, agents)]
                            t0 = time.perf_counter()
                            await _timed_get(http, f"{base}/api/v1/conversations/{cid}", token)
                            await _timed_get(
                                http, f"{base}/api/v1/conversations/{cid}/messages", token
                            )
                            opens.append(time.perf_counter() - t0)
                        out["open_conversation"] = _ms(opens)

                    # 3. Search.
                    queries: dict[str, Callable[[], str]] = {
                        "order_number": lambda: str(rng.randint(1, ORDER_MOD - 1)),
                        "common_word": lambda: "refund",
                        "two_words": lambda: "invoice amount",
                        "chinese_word": lambda: "退款",
                        "prefix": lambda: "subscr",
                        "customer_email": lambda: f"c{rng.randint(1, customers)}@exa",
                        "customer_chinese": lambda: f"客户{rng.randrange(5, customers + 1, 5)}",
                        "customer_phone": lambda: f"{rng.randint(1, customers):07d}",
                    }
                    for name, make in queries.items():
                        pickers: list[tuple[str, Callable[[], str]]] = [
                            ("agent", lambda: tokens[rng.randint(1, agents)]),
                            ("supervisor", lambda: tokens[supervisor]),
                        ]
                        for who, pick in pickers:
                            times = []
                            for _ in range(max(20, args.queries // 4)):
                                url = f"{base}/api/v1/search?q={quote(make())}"
                                times.append(await _timed_get(http, url, pick()))
                            out[f"search_{name}_{who}"] = _ms(times)
                    if args.only == "search":
                        return out  # the hubs stop in `finally`

                # 4. Fan-out to agents on two hubs.
                # (its own session: the default one pools at most 100 connections)
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)
                ) as sockets_http:
                    out["fanout"] = await _fanout(
                        sockets_http, hubs, tokens, agents, args.fanout, rng
                    )
        finally:
            for hub in hubs:
                problems = hub.log_problems()
                if problems:
                    out.setdefault("hub_log_problems", []).append(hub.log_tail(20))
                await hub.stop()
    return out


async def _fanout(
    http: Any, hubs: list[Hub], tokens: dict[int, str], agents: int, rounds: int, rng: Any
) -> dict[str, Any]:
    arrivals: dict[int, dict[int, float]] = {}  # message id -> agent -> arrival time
    everyone: dict[int, asyncio.Event] = {}  # message id -> set once every socket has it
    sockets: list[Any] = []
    readers: list[asyncio.Task[None]] = []

    async def read(ws: Any, agent: int) -> None:
        async for frame in ws:
            if frame.type != 1:  # TEXT
                continue
            data = json.loads(frame.data)
            if data.get("type") == "message.created":
                message_id = data["data"]["message"]["id"]
                got = arrivals.setdefault(message_id, {})
                got.setdefault(agent, time.perf_counter())
                if len(got) == agents:
                    everyone.setdefault(message_id, asyncio.Event()).set()

    connect_started = time.perf_counter()
    room = asyncio.Semaphore(20)  # handshakes in flight at once

    async def connect(agent: int) -> None:
        hub = hubs[agent % 2]
        async with room:
            ws = await http.ws_connect(
                f"{hub.base}/inbox/ws",
                headers={"Authorization": f"Bearer {tokens[agent]}"},
                heartbeat=None,
            )
        sockets.append(ws)
        readers.append(asyncio.create_task(read(ws, agent)))

    await asyncio.gather(*(connect(agent) for agent in range(1, agents + 1)))
    connect_s = time.perf_counter() - connect_started
    # Every subscription in place on both hubs, and the hubs done with the newly online
    # agents (presence, routing) before anything is timed.
    await asyncio.sleep(5)
    latencies: list[float] = []
    complete = 0
    try:
        for n in range(-1, rounds):  # -1: one untimed warm-up message
            cid = rng.randrange(2, 2 * (agents + 1), 2)  # no ticket: every agent may see it
            t0 = time.perf_counter()
            async with http.post(
                f"{hubs[0].base}/api/v1/conversations/{cid}/messages",
                json={"text": f"fan-out {n}"},
                headers={"Authorization": f"Bearer {tokens[1]}"},
            ) as response:
                body = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"reply failed: {response.status} {body}")
            message_id = body["message"]["id"]
            done = everyone.setdefault(message_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 30)
            got = arrivals.get(message_id, {})
            if n < 0:
                continue
            if len(got) == agents:
                complete += 1
            latencies.extend(at - t0 for at in got.values())
            await asyncio.sleep(0.5)
    finally:
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
    result = _ms(latencies)
    result.update(
        {
            "sockets": agents,
            "hubs": len(hubs),
            "messages": rounds,
            "messages_reaching_every_socket": complete,
            "connect_all_s": round(connect_s, 1),
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only",
        choices=("all", "fanout", "search"),
        default="all",
        help="fanout: part 4, search: part 3 (each with the baselines)",
    )
    args = parser.parse_args()
    if args.agents % QUEUES:
        parser.error(f"--agents must be a multiple of {QUEUES}")
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["loadavg"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    for key, value in results.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
