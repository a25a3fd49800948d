"""SLA scan and agent ticket-list benchmarks at 1,000,000 tickets on PostgreSQL.

    nice .venv/bin/python -m bench.sla [--tickets 1000000] [--active-share 0.15]
        [--due 1000] [--queries 300] [--skip-breach] [--json]

A fresh database (migrated) is bulk-loaded with generate_series: 1,000 agents in 10
queues, `--tickets` tickets of which `--active-share` are active (two thirds assigned,
the rest waiting in a queue), the others solved or closed; every ticket has a
first-response and a resolution clock (active on active tickets, hit on the others), so
about twice `--tickets` clock rows. The active clocks' due times spread over the next 30
days, except `--due` of them, which are already due.

Measured, all through the hub's own code (`tickets.sla_worker`, `tickets.listing`,
`tickets.service.ticket_views`) on one engine:

1. breach: `do_sla_pass` (batch 200, default escalation: a timeline entry and a
   `ticket.sla_breached` event per clock) until nothing is due: clocks/s;
2. idle scan: one `do_sla_pass` with nothing due plus the worker's `next_due_in`, repeated
   `--queries` times: p50/p99 ms — what every worker pays per wake-up at this size;
3. agent list: an agent's two inbox lists, 50 newest each with their views (tags,
   conversations, SLA clocks): "mine" (assigned to me, active) and "visible active"
   (my queues', mine and unqueued; new/open/pending/on hold), `--queries` times each with
   random agents: p50/p99 ms. Target p99 < 50 ms.

`--skip-breach` leaves out 1 and its baseline (and seeds no overdue clocks, so the idle
scan stays idle). The plans of both list queries for one agent (EXPLAIN ANALYZE) are
printed with the figures.

Baselines, same run and database: single-row `UPDATE tickets … WHERE id = $1`
transactions through the same engine (for 1) and a primary-key `SELECT` of one ticket
through the same engine (for 2 and 3), p50/p99. It prints figures and never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import timedelta
from typing import Any

from bench.intake import fresh_target, percentile

AGENTS = 1000
QUEUES = 10


async def _seed(dsn: str, tickets: int, active_share: float, due: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    active = int(tickets * active_share)
    try:
        await conn.execute(
            """
            INSERT INTO users (id, email, name, role, password_hash, active, locale, timezone,
                               created_at)
            SELECT g, 'agent' || g || '@bench.invalid', 'Agent ' || g, 'agent', 'x', true,
                   'en', 'UTC', now()
            FROM generate_series(1, $1) g
            """,
            AGENTS,
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
            AGENTS,
            QUEUES,
        )
        await conn.execute("INSERT INTO customers (id, name, created_at) VALUES (1, 'c', now())")
        await conn.execute(
            """
            INSERT INTO sla_policies (id, name, calendar_id, targets, escalations, is_default,
                                      created_at, updated_at)
            VALUES (1, 'bench', NULL,
                    '{"normal": {"first_response": 60, "resolution": 480}}'::json,
                    '[{"when": "warning", "action": "notify"},
                      {"when": "breach", "action": "notify"}]'::json,
                    true, now(), now())
            """
        )
        # Ids 1..tickets in creation order; the newest `active` are the active ones (the
        # usual shape: old tickets are done). Active: two thirds assigned to an agent of
        # the ticket's queue, the rest waiting unassigned in the queue.
        started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO tickets (id, customer_id, status, priority, source, queue_id,
                                 assignee_user_id, sla_policy_id, created_at, updated_at,
                                 solved_at)
            SELECT g, 1,
                   CASE WHEN g > $1::int - $2::int
                        THEN (ARRAY['new','open','pending','on_hold'])[1 + g % 4]
                        WHEN g % 2 = 0 THEN 'solved' ELSE 'closed' END,
                   'normal', 'inbox', (g % $3) + 1,
                   -- agent a is in queue (a % 10) + 1, so g % 1000 (0 read as 1000) is a
                   -- member of ticket g's queue
                   CASE WHEN g <= $1::int - $2::int OR g % 3 <> 0
                        THEN COALESCE(NULLIF(g % $4, 0), $4) END,
                   1, now() - interval '60 days' + (g * interval '5 seconds'), now(),
                   CASE WHEN g <= $1::int - $2::int THEN now() - interval '1 day' END
            FROM generate_series(1, $1) g
            """,
            tickets,
            active,
            QUEUES,
            AGENTS,
        )
        # Clocks: due times of active ones spread over 30 days; `due` of them overdue.
        await conn.execute(
            """
            INSERT INTO sla_clocks (ticket_id, policy_id, metric, status, priority,
                                    target_minutes, started_at, due_at, paused_seconds,
                                    stopped_at)
            SELECT t.id, 1, m.metric,
                   CASE WHEN t.id > $1::int - $2::int THEN 'active' ELSE 'hit' END,
                   'normal', m.target, t.created_at,
                   CASE WHEN t.id > $1::int - $2::int
                        THEN now() + interval '1 hour'
                             + ((t.id::bigint * 7919 + m.k) % 2592000) * interval '1 second'
                        ELSE t.created_at + m.target * interval '1 minute' END,
                   0,
                   CASE WHEN t.id <= $1::int - $2::int THEN t.created_at + interval '10 minutes' END
            FROM tickets t
            CROSS JOIN (VALUES ('first_response', 60, 0), ('resolution', 480, 1))
                 AS m(metric, target, k)
            """,
            tickets,
            active,
        )
        # Overdue ones among the running (not paused: pending/on hold tickets' clocks
        # would be paused) clocks.
        await conn.execute(
            """
            UPDATE sla_clocks SET due_at = now() - interval '1 minute'
            WHERE id IN (
              SELECT c.id FROM sla_clocks c JOIN tickets t ON t.id = c.ticket_id
              WHERE c.status = 'active' AND t.status IN ('new', 'open')
              ORDER BY c.id LIMIT $1)
            """,
            due,
        )
        await conn.execute(
            "UPDATE sla_clocks SET paused_at = now() FROM tickets t WHERE t.id = ticket_id"
            " AND sla_clocks.status = 'active' AND t.status IN ('pending', 'on_hold')"
        )
        for table in ("users", "queues", "tickets", "customers", "sla_policies", "sla_clocks"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 (constants)
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
        plan = await conn.fetch(
            "EXPLAIN SELECT id, ticket_id FROM sla_clocks WHERE status = 'active'"
            " AND paused_at IS NULL AND due_at <= now() + interval '15 minutes'"
            " AND (warned_at IS NULL OR due_at <= now()) ORDER BY due_at LIMIT 200"
        )
        clocks = await conn.fetchval("SELECT count(*) FROM sla_clocks")
        return {
            "tickets": tickets,
            "active_tickets": active,
            "clocks": clocks,
            "seed_s": round(time.perf_counter() - started, 1),
            "scan_plan": [row[0].strip() for row in plan][:3],
        }
    finally:
        await conn.close()


def _ms(values: list[float]) -> dict[str, Any]:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return {
        "n": len(values),
        "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    return round(value / base, 2) if value is not None and base else None


async def _breach(
    db: Any, args: argparse.Namespace, rng: random.Random, policy: Any, out: dict[str, Any]
) -> None:
    from sqlalchemy import text

    from switchboard.db import utcnow
    from tickets.sla_worker import do_sla_pass

    # 1. Baseline: single-row UPDATE transactions through the same engine.
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3:
        ticket_id = rng.randint(1, args.tickets)
        await db.run(
            lambda s, i=ticket_id: s.execute(
                text("UPDATE tickets SET updated_at = now() WHERE id = :i"), {"i": i}
            )
        )
        n += 1
    out["baseline_update_tx_per_s"] = round(n / (time.perf_counter() - started), 1)

    # 1. Breach everything due.
    handled, started = 0, time.perf_counter()
    while done := await db.run(lambda s: do_sla_pass(s, utcnow(), policy)):
        handled += done
    elapsed = time.perf_counter() - started
    out["breach"] = {
        "clocks": handled,
        "seconds": round(elapsed, 2),
        "clocks_per_s": round(handled / elapsed, 1) if elapsed else None,
    }
    out["breach"]["ratio_to_baseline"] = (
        round(out["breach"]["clocks_per_s"] / out["baseline_update_tx_per_s"], 3)
        if out["breach"]["clocks_per_s"]
        else None
    )


async def _plan(db: Any, user: Any, *, mine: bool, tickets: int) -> list[str]:
    """EXPLAIN ANALYZE of the list query as `list_tickets` builds it, for one agent."""
    from sqlalchemy import select, text
    from sqlalchemy.dialects import postgresql

    from tickets.access import visible_tickets
    from tickets.listing import TicketFilter, _conditions
    from tickets.models import ACTIVE_STATUSES, Ticket

    filters = TicketFilter(
        statuses=tuple(sorted(ACTIVE_STATUSES)), assignee=user.id if mine else None
    )
    query = (
        select(Ticket)
        .where(visible_tickets(user), *_conditions(filters))
        .order_by(Ticket.id.desc())
        .limit(51)
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    async with db.reading() as session:
        rows = await session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))
        return [row[0] for row in rows]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    from switchboard.bus import InProcessBus
    from switchboard.db import create_engine, create_sessionmaker, utcnow
    from switchboard.models import User
    from switchboard.tx import Database
    from tickets.access import visible_tickets
    from tickets.listing import TicketFilter, list_tickets
    from tickets.models import ACTIVE_STATUSES, Ticket
    from tickets.service import ticket_views
    from tickets.sla_worker import SlaWorkerPolicy, do_sla_pass, next_due_in

    out: dict[str, Any] = {}
    rng = random.Random(7)
    async with fresh_target("postgres") as target:
        due = 0 if args.skip_breach else args.due
        out["seed"] = await _seed(target.raw_dsn, args.tickets, args.active_share, due)
        engine = create_engine(target.app_url)
        db = Database(engine, create_sessionmaker(engine), InProcessBus())
        try:
            policy = SlaWorkerPolicy(warning=timedelta(minutes=15), batch=200)
            if not args.skip_breach:
                await _breach(db, args, rng, policy, out)

            # Baseline for 2 and 3: a primary-key SELECT of one ticket.
            lookups = []
            for _ in range(args.queries):
                ticket_id = rng.randint(1, args.tickets)
                t0 = time.perf_counter()
                async with db.reading() as session:
                    await session.get(Ticket, ticket_id)
                lookups.append(time.perf_counter() - t0)
            out["baseline_pk_select"] = _ms(lookups)

            # 2. Idle scan: nothing due (everything due was just breached).
            scans = []
            for _ in range(args.queries):
                t0 = time.perf_counter()
                now = utcnow()
                await db.run(lambda s, now=now: do_sla_pass(s, now, policy))  # type: ignore[misc]
                async with db.reading() as session:
                    await next_due_in(session, now, policy)
                scans.append(time.perf_counter() - t0)
            out["idle_scan"] = _ms(scans)

            # 3. Agents' lists.
            async with db.reading() as session:
                agents = list((await session.execute(select(User))).scalars())
            for name, mine in (("mine", True), ("visible_active", False)):
                times = []
                for _ in range(args.queries):
                    user = rng.choice(agents)
                    filters = TicketFilter(
                        statuses=tuple(sorted(ACTIVE_STATUSES)),
                        assignee=user.id if mine else None,
                    )
                    t0 = time.perf_counter()
                    async with db.reading() as session:
                        page = await list_tickets(
                            session, visible=visible_tickets(user), filters=filters, limit=50
                        )
                        await ticket_views(session, page.tickets)
                    times.append(time.perf_counter() - t0)
                out[f"agent_list_{name}"] = _ms(times)
                out[f"agent_list_{name}"]["ratio_to_pk_p50"] = _ratio(
                    out[f"agent_list_{name}"]["p50_ms"], out["baseline_pk_select"]["p50_ms"]
                )
                out[f"agent_list_{name}"]["ratio_to_pk_p99"] = _ratio(
                    out[f"agent_list_{name}"]["p99_ms"], out["baseline_pk_select"]["p99_ms"]
                )
                out[f"agent_list_{name}"]["plan"] = await _plan(
                    db, agents[0], mine=mine, tickets=args.tickets
                )
        finally:
            await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--active-share", type=float, default=0.15)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-breach", action="store_true", help="leave out the breach part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
