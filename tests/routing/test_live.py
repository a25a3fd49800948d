"""In the running hub (its own routing worker): an agent opening the inbox socket comes
online and the ticket their queue held is assigned at once; closing it starts the grace
period instead of taking them offline."""

from __future__ import annotations

from sqlalchemy import select

from routing.models import AgentProfile
from switchboard.tx import Database
from tests.conftest import ClientFactory
from tests.customers.support import until
from tests.routing.support import (
    assignees,
    make_customer,
    make_queue,
    new_ticket,
    presence_of,
    route_all_to,
)
from tests.security.support import bearer, staff_token


async def test_an_agent_coming_online_drains_the_queue(
    make_client: ClientFactory, db: Database
) -> None:
    client = await make_client()  # with its workers
    admin_id, _admin = await staff_token(db, "admin@example.com", "admin")
    ada_id, ada = await staff_token(db, "ada@example.com", "agent")
    queue = await make_queue(db, "support")
    from routing.service import do_add_member

    await db.run(lambda s: do_add_member(s, queue, ada_id))
    await route_all_to(db, queue, admin_id)
    ticket = await new_ticket(db, await make_customer(db))
    assert await assignees(db, [ticket]) == [None]

    ws = await client.ws_connect("/inbox/ws", headers=bearer(ada))

    async def assigned() -> bool:
        return await assignees(db, [ticket]) == [ada_id]

    await until(assigned)
    assert await presence_of(db, ada_id) == "online"

    await ws.close()

    async def disconnected() -> bool:
        async with db.reading() as session:
            profile = (
                await session.execute(select(AgentProfile).where(AgentProfile.user_id == ada_id))
            ).scalar_one()
            return profile.disconnected_at is not None

    await until(disconnected)
    assert await presence_of(db, ada_id) == "online"  # within the grace period
    assert await assignees(db, [ticket]) == [ada_id]
