"""The demo's support floor: a queue the demo agents work, an SLA, a routing rule and
canned replies, so `make demo` shows the whole path — a visitor asks the bot for a person,
a ticket opens in the queue with an SLA clock, an online agent gets it, the supervisor's
dashboard counts down to its breach.

Everything goes through the same checks and services as the admin console, and only
into a database with no queue yet: running the demo again changes nothing an admin
edited in between.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.canned import check_canned_fields, do_create_canned
from routing.models import Queue
from routing.rulebook import do_create_rule
from routing.rules import check_rule
from routing.service import check_profile_fields, do_add_member, do_create_queue, do_update_profile
from switchboard.models import Role, User
from tickets.sla_admin import check_calendar, check_policy, do_save_calendar, do_save_policy

# Around the clock, so the demo's clocks run whenever someone tries it.
ALWAYS = {
    day: [["00:00", "24:00"]]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
TARGETS = {
    "urgent": {"first_response": 15, "next_response": 30, "resolution": 240},
    "high": {"first_response": 30, "next_response": 60, "resolution": 480},
    "normal": {"first_response": 60, "next_response": 240, "resolution": 1440},
    "low": {"first_response": 240, "next_response": 480, "resolution": 2880},
}
CANNED = (
    {
        "shortcut": "greet",
        "title": "Greeting",
        "body": "Hi {{customer.first_name}}, this is {{agent.name}}. I'm looking into it now.",
    },
    {
        "shortcut": "refund",
        "title": "Refund on its way",
        "body": "Your refund is on its way: it reaches your card in 3-5 working days.",
    },
    {
        "shortcut": "bye",
        "title": "Closing",
        "body": "Glad I could help, {{customer.first_name}}. Have a good day!",
    },
)


async def do_seed_floor(session: AsyncSession) -> bool:
    """Seed the floor once; False when the database already has a queue."""
    if (await session.execute(select(func.count()).select_from(Queue))).scalar_one():
        return False
    admin = (
        (await session.execute(select(User).where(User.role == Role.ADMIN).order_by(User.id)))
        .scalars()
        .first()
    )
    agents = (
        (await session.execute(select(User).where(User.role == Role.AGENT).order_by(User.id)))
        .scalars()
        .all()
    )
    queue = await do_create_queue(session, {"name": "Support", "strategy": "least_loaded"})
    for agent in agents:
        await do_add_member(session, queue.id, agent.id)
        await do_update_profile(
            session, agent.id, check_profile_fields({"capacity": 5, "languages": ["en", "zh"]})
        )
    calendar = await do_save_calendar(
        session, check_calendar({"name": "Around the clock", "time_zone": "UTC", "hours": ALWAYS})
    )
    body: dict[str, Any] = {
        "name": "Standard",
        "calendar_id": calendar.id,
        "targets": TARGETS,
        "is_default": True,
    }
    policy = await do_save_policy(session, await check_policy(session, body))
    rule = check_rule(
        {
            "name": "Everything to Support",
            "conditions": {},
            "actions": {"queue_id": queue.id, "sla_policy_id": policy.id},
        }
    )
    if admin is not None:
        await do_create_rule(session, rule, admin.id)
        for fields in CANNED:
            await do_create_canned(
                session, check_canned_fields(fields, creating=True), user_id=admin.id
            )
    return True
