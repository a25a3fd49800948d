"""Who may change a ticket's assignee and merge across queues through the API.

An agent takes an unassigned ticket (409 naming the owner if it is someone else's, as
`POST /tickets/{id}/claim`) or unassigns themselves; nothing else (403). Supervisors and
admins assign to any active staff member. An agent merges only tickets of one queue;
supervisors and admins merge across queues.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from routing.models import Queue, QueueMember
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.security.support import bearer, staff_token
from tests.tickets.support import activities, customer_writes, get_ticket, open_ticket
from tickets.models import Ticket, TicketNote
from tickets.service import do_add_note, do_create_ticket


async def assign(client: AppClient, token: str, ticket_id: int, to: int | None) -> tuple[int, Any]:
    response = await client.patch(
        f"/api/v1/tickets/{ticket_id}", json={"assignee_id": to}, headers=bearer(token)
    )
    return response.status, await response.json()


async def test_agents_take_unassigned_tickets_and_give_up_only_their_own(
    client: AppClient, db: Database
) -> None:
    ada_id, ada = await staff_token(db, "ada@example.com", "agent", name="Ada Lovelace")
    bob_id, bob = await staff_token(db, "bob@example.com", "agent")
    _sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    conversation_id, _ = await customer_writes(db, "v_rights_1")
    ticket_id = (await open_ticket(db, conversation_id)).id

    # Bob cannot hand an unassigned ticket to Ada.
    status, body = await assign(client, bob, ticket_id, ada_id)
    assert (status, body["error"]["code"]) == (403, "assignment_forbidden")
    assert "supervisor" in body["error"]["message"]
    assert (await get_ticket(db, ticket_id)).assignee_user_id is None

    # Ada takes it; Bob's taking it over is the claim's 409 naming her.
    status, body = await assign(client, ada, ticket_id, ada_id)
    assert (status, body["ticket"]["assignee_id"]) == (200, ada_id)
    status, body = await assign(client, bob, ticket_id, bob_id)
    assert (status, body["error"]["code"]) == (409, "already_claimed")
    assert "Ada Lovelace" in body["error"]["message"]
    claimed = await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=bearer(bob))
    assert claimed.status == 409
    # Bob can neither unassign her nor reassign her ticket to someone else.
    for to in (None, ada_id):
        status, body = await assign(client, bob, ticket_id, to)
        assert status == 403, body
    assert (await get_ticket(db, ticket_id)).assignee_user_id == ada_id
    # Ada cannot give her ticket to Bob, but can give it up.
    status, _ = await assign(client, ada, ticket_id, bob_id)
    assert status == 403
    status, body = await assign(client, ada, ticket_id, None)
    assert (status, body["ticket"]["assignee_id"]) == (200, None)

    # A supervisor assigns to anyone and reassigns.
    for to in (bob_id, ada_id, None):
        status, body = await assign(client, supervisor, ticket_id, to)
        assert (status, body["ticket"]["assignee_id"]) == (200, to)
    # Exactly the allowed changes reached the timeline.
    changes = [a["data"] for a in await activities(db, ticket_id) if a["kind"] == "assignee"]
    assert changes == [
        {"from": None, "to": ada_id},
        {"from": ada_id, "to": None},
        {"from": None, "to": bob_id},
        {"from": bob_id, "to": ada_id},
        {"from": ada_id, "to": None},
    ]


async def test_an_agent_cannot_merge_a_queued_ticket_into_one_of_another_queue(
    client: AppClient, db: Database
) -> None:
    ada_id, ada = await staff_token(db, "ada@example.com", "agent")
    _sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    conversation_id, customer_id = await customer_writes(db, "v_rights_2")
    queued = (await open_ticket(db, conversation_id)).id
    unqueued = (
        await db.run(lambda s: do_create_ticket(s, customer_id=customer_id, actor="system"))
    ).id

    async def arrange(session: Any) -> None:
        queue = Queue(name="vip")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=ada_id))
        await session.execute(update(Ticket).where(Ticket.id == queued).values(queue_id=queue.id))
        await do_add_note(session, queued, body="VIP only", author_user_id=ada_id)

    await db.run(arrange)

    async def notes_on(ticket_id: int) -> int:
        async with db.reading() as session:
            return (
                await session.execute(select(func.count()).where(TicketNote.ticket_id == ticket_id))
            ).scalar_one()

    # Ada sees both (the unqueued one is everyone's), but may not move the VIP
    # ticket's note where every agent would see it; nor the other way round.
    for survivor, merged in ((unqueued, queued), (queued, unqueued)):
        response = await client.post(
            f"/api/v1/tickets/{survivor}/merge", json={"other_id": merged}, headers=bearer(ada)
        )
        assert response.status == 409
        error = (await response.json())["error"]
        assert error["code"] == "other_queue" and "supervisor" in error["message"]
    assert (await notes_on(queued), await notes_on(unqueued)) == (1, 0)
    assert (await get_ticket(db, queued)).status != "closed"

    response = await client.post(
        f"/api/v1/tickets/{unqueued}/merge", json={"other_id": queued}, headers=bearer(supervisor)
    )
    assert response.status == 200
    assert (await notes_on(queued), await notes_on(unqueued)) == (0, 1)
