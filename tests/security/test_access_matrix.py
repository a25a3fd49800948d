"""Every route of the built app × every kind of caller → exactly the expected status
(SECURITY.md 4: 26, 27, 29; issue 6 point 1).

HOW TO ADD YOUR ROUTE: add one line to `ROUTES` below, keyed "METHOD /path" exactly as
aiohttp names it (sub-app routes with their `/api/v1` prefix; `{id}` as in `add_get`).
`test_every_route_has_an_entry` fails for a route of the app that has no line, and for a
line whose route no longer exists. A line gives:

- the six statuses, in the order of `CALLERS`: anonymous (no credential), customer (a
  widget visitor token in `X-Visitor-Token`, no staff session), agent outside the queue,
  agent in the queue, supervisor, admin. 101 means a websocket handshake that succeeds;
- `ids`: an async function making FRESH rows for the path's `{...}` parameters (called
  once per caller, so a write by one caller never spoils the next caller's call), from the
  `Arrange` helpers (`a.conversation()`, `a.ticket()`, `a.customer()`, ...). Everything
  queue-scoped is made in the queue the "member" agent belongs to and the "outsider"
  does not;
- `body`: the JSON body, or an async function of (`Arrange`, ids) returning it.

Where the outsider's status is 404 on a route with ids, the test also asks for ids that
do not exist and asserts the same status and the same body, byte for byte: an outsider
cannot tell "not yours" from "not there". HEAD routes are served by their GET handler
(aiohttp adds them) and are covered by the GET line.
Every route runs on SQLite (in-process bus); the object-scoped ones on PostgreSQL (Redis
bus) too.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from aiohttp import WSServerHandshakeError, web
from sqlalchemy import update

from conversations import attachments as attachment_store
from conversations.models import AuthorKind
from conversations.service import do_reply
from customers.merge import do_merge
from routing.models import Queue, QueueMember
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.knowledge_base.support import HOURS
from tests.security.support import (
    bearer,
    new_visitor,
    open_widget,
    send_text,
    staff_token,
    tiny_png,
    webchat_inbox,
)
from tests.tickets.support import customer_writes, open_ticket
from tickets.models import Ticket
from tickets.service import do_create_ticket


class S(NamedTuple):
    """Expected statuses, one per caller."""

    anonymous: int
    customer: int
    outsider: int
    member: int
    supervisor: int
    admin: int


CALLERS = S._fields
Ids = Callable[["Arrange"], Awaitable[dict[str, Any]]]
Body = dict[str, Any] | Callable[["Arrange", dict[str, Any]], Awaitable[dict[str, Any]]] | None


@dataclass(frozen=True)
class Route:
    expect: S
    ids: Ids | None = None
    body: Body = None
    query: dict[str, str] = field(default_factory=dict)
    websocket: bool = False
    multipart: bool = False
    # Appended to the path, formatted with the ids: "?conversation_id={conversation_id}".
    suffix: str = ""


# --- arranging rows ------------------------------------------------------------------------


@dataclass
class World:
    client: AppClient
    db: Database
    queue_id: int
    inbox_id: int
    user_ids: dict[str, int]
    headers: dict[str, dict[str, str]]
    visitor_token: str


class Arrange:
    """Fresh rows for one call. Queue-scoped rows go into the member's queue."""

    def __init__(self, world: World) -> None:
        self.w = world

    async def _into_queue(self, ticket_id: int) -> None:
        await self.w.db.run(
            lambda s: s.execute(
                update(Ticket).where(Ticket.id == ticket_id).values(queue_id=self.w.queue_id)
            )
        )

    async def thread(self) -> tuple[int, int, int]:
        """A customer's conversation with its ticket in the queue: (conversation, customer,
        ticket)."""
        conversation_id, customer_id = await customer_writes(
            self.w.db, f"v_matrix_{secrets.token_hex(6)}", inbox_id=self.w.inbox_id
        )
        ticket = await open_ticket(self.w.db, conversation_id)
        await self._into_queue(ticket.id)
        return conversation_id, customer_id, ticket.id

    async def conversation(self) -> int:
        return (await self.thread())[0]

    async def customer(self) -> int:
        return (await self.thread())[1]

    async def ticket(self) -> int:
        return (await self.thread())[2]

    async def ticket_pair(self) -> tuple[int, int]:
        """Two tickets of one customer in the queue (for merge)."""
        _conversation, customer_id, first = await self.thread()
        second = await self.w.db.run(
            lambda s: do_create_ticket(s, customer_id=customer_id, actor="system", subject="call")
        )
        await self._into_queue(second.id)
        return first, second.id

    async def attachment(self) -> str:
        """A file an admin sent in a queued conversation."""
        conversation_id = await self.conversation()
        data = tiny_png()
        upload = attachment_store.check_upload("photo.png", data, 10_000_000)

        async def store(session: Any) -> str:
            row = await attachment_store.do_store_attachment(
                session,
                inbox_id=self.w.inbox_id,
                upload=upload,
                data=data,
                user_id=self.w.user_ids["admin"],
            )
            await do_reply(
                session,
                conversation_id=conversation_id,
                text="here",
                author_kind=AuthorKind.AGENT,
                author_user_id=self.w.user_ids["admin"],
                attachment_ids=[row.id],
            )
            return row.id

        return await self.w.db.run(store)

    async def merge(self) -> int:
        survivor, merged = await self.customer(), await self.customer()
        record = await self.w.db.run(
            lambda s: do_merge(s, survivor_id=survivor, merged_id=merged, actor_user_id=None)
        )
        return record.id

    async def admin_post(self, path: str, body: dict[str, Any], key: str) -> int:
        response = await self.w.client.post(
            f"/api/v1{path}", json=body, headers=self.w.headers["admin"]
        )
        assert response.status == 201, await response.text()
        return int((await response.json())[key]["id"])

    async def article(self) -> int:
        body = {**HOURS, "key": f"k_{secrets.token_hex(4)}"}
        return await self.admin_post("/kb/articles", body, "article")

    async def calendar(self) -> int:
        return await self.admin_post("/sla/calendars", calendar_body(), "calendar")

    async def policy(self) -> int:
        return await self.admin_post("/sla/policies", policy_body(), "policy")

    async def rule(self) -> int:
        return await self.admin_post("/routing/rules", RULE, "rule")

    async def empty_queue(self) -> int:
        return await self.admin_post("/queues", {"name": f"q{secrets.token_hex(4)}"}, "queue")


def calendar_body() -> dict[str, Any]:
    return {
        "name": f"office {secrets.token_hex(3)}",
        "time_zone": "Europe/Berlin",
        "hours": {"monday": [["09:00", "17:00"]]},
    }


def policy_body() -> dict[str, Any]:
    return {
        "name": f"policy {secrets.token_hex(3)}",
        "targets": {"normal": {"first_response": 60, "resolution": 480}},
    }


RULE = {"name": "refunds", "conditions": {"keywords": ["refund"]}, "actions": {"priority": "high"}}


async def conversation(a: Arrange) -> dict[str, Any]:
    return {"id": await a.conversation()}


async def customer(a: Arrange) -> dict[str, Any]:
    return {"id": await a.customer()}


async def ticket(a: Arrange) -> dict[str, Any]:
    return {"id": await a.ticket()}


async def ticket_pair(a: Arrange) -> dict[str, Any]:
    first, second = await a.ticket_pair()
    return {"id": first, "other": second}


async def customer_pair(a: Arrange) -> dict[str, Any]:
    return {"id": await a.customer(), "other": await a.customer()}


async def other_id(_a: Arrange, ids: dict[str, Any]) -> dict[str, Any]:
    return {"other_id": ids["other"]}


async def new_ticket_for(_a: Arrange, ids: dict[str, Any]) -> dict[str, Any]:
    return {"customer_id": ids["customer_id"]}


async def a_customer(a: Arrange) -> dict[str, Any]:
    return {"customer_id": await a.customer()}


async def attachment(a: Arrange) -> dict[str, Any]:
    return {"id": await a.attachment()}


async def merge(a: Arrange) -> dict[str, Any]:
    return {"id": await a.merge()}


async def article(a: Arrange) -> dict[str, Any]:
    return {"id": await a.article()}


async def article_with_draft(a: Arrange) -> dict[str, Any]:
    """A published article with a pending draft."""
    article_id = await a.article()
    admin = a.w.headers["admin"]
    path = f"/api/v1/kb/articles/{article_id}"
    assert (await a.w.client.post(f"{path}/publish", headers=admin)).status == 200
    edited = await a.w.client.patch(
        path, json={"question": "Open late?", "as_draft": True}, headers=admin
    )
    assert edited.status == 200, await edited.text()
    return {"id": article_id}


async def calendar(a: Arrange) -> dict[str, Any]:
    return {"id": await a.calendar()}


async def policy(a: Arrange) -> dict[str, Any]:
    return {"id": await a.policy()}


async def rule(a: Arrange) -> dict[str, Any]:
    return {"id": await a.rule()}


async def member_queue(a: Arrange) -> dict[str, Any]:
    return {"id": a.w.queue_id}


async def empty_queue(a: Arrange) -> dict[str, Any]:
    return {"id": await a.empty_queue()}


async def queue_and_member(a: Arrange) -> dict[str, Any]:
    return {"id": await a.empty_queue(), "user_id": a.w.user_ids["member"]}


async def member_agent(a: Arrange) -> dict[str, Any]:
    return {"id": a.w.user_ids["member"]}


async def inbox(a: Arrange) -> dict[str, Any]:
    return {"id": a.w.inbox_id}


async def new_canned(_a: Arrange, _ids: dict[str, Any]) -> dict[str, Any]:
    return {"shortcut": f"hi{secrets.token_hex(3)}", "title": "Hello", "body": "Hi {{name}}"}


async def canned(a: Arrange) -> dict[str, Any]:
    return {"id": await a.admin_post("/canned-replies", await new_canned(a, {}), "canned_reply")}


async def canned_in_conversation(a: Arrange) -> dict[str, Any]:
    return {**await canned(a), "conversation_id": await a.conversation()}


async def members_view(a: Arrange) -> dict[str, Any]:
    response = await a.w.client.post(
        "/api/v1/inbox/views",
        json={"name": f"mine {secrets.token_hex(3)}"},
        headers=a.w.headers["member"],
    )
    assert response.status == 201, await response.text()
    return {"id": (await response.json())["view"]["id"]}


async def admin_section(_a: Arrange) -> dict[str, Any]:
    return {"section": "kb"}


async def a_report(_a: Arrange) -> dict[str, Any]:
    return {"name": "sla"}


async def staff_user(a: Arrange) -> dict[str, Any]:
    user_id, _token = await staff_token(a.w.db, f"u{secrets.token_hex(4)}@example.com", "agent")
    return {"id": user_id}


async def new_user(_a: Arrange, _ids: dict[str, Any]) -> dict[str, Any]:
    return {"email": f"new{secrets.token_hex(4)}@example.com", "role": "agent"}


async def missing(_a: Arrange) -> dict[str, Any]:
    return {"id": MISSING_ID}


async def rule_order(a: Arrange, _ids: dict[str, Any]) -> dict[str, Any]:
    """Every rule, newest first (a reorder names them all)."""
    await a.rule()
    listed = await a.w.client.get("/api/v1/routing/rules", headers=a.w.headers["admin"])
    return {"ids": [r["id"] for r in (await listed.json())["rules"]][::-1]}


async def bad_token(_a: Arrange) -> dict[str, Any]:
    return {"token": "not-a-real-link"}


async def unknown_inbox_key(_a: Arrange) -> dict[str, Any]:
    return {"kind": "telegram", "key": "no-such-inbox"}


async def widget_upload(a: Arrange) -> dict[str, Any]:
    return {}


async def visitor_attachment(a: Arrange) -> dict[str, Any]:
    """A file the world's visitor uploaded in their own conversation."""
    from tests.security.support import multipart_file

    body, headers = multipart_file(tiny_png())
    response = await a.w.client.post(
        "/widget/upload", data=body, headers={**headers, "X-Visitor-Token": a.w.visitor_token}
    )
    assert response.status == 201, await response.text()
    attachment_id = (await response.json())["attachment_id"]
    ws = await open_widget(a.w.client, a.w.visitor_token)
    sent = await send_text(ws, f"file-{secrets.token_hex(4)}", "my photo", [attachment_id])
    assert sent["type"] == "ack", sent
    await ws.close()
    return {"id": attachment_id}


async def widget_session_body(a: Arrange, _ids: dict[str, Any]) -> dict[str, Any]:
    found = await webchat_inbox(a.w.db)
    return {"inbox": found.public_key}


MISSING_ID = "2147483000"
DENIED = S(401, 401, 403, 403, 403, 200)  # admin-only settings
READ_SETTINGS = S(401, 401, 403, 403, 200, 200)  # supervisors read, admins too
STAFF = S(401, 401, 200, 200, 200, 200)
SCOPED = S(401, 401, 404, 200, 200, 200)  # an object in the member's queue
ADMIN_WRITE_201 = S(401, 401, 403, 403, 403, 201)
PUBLIC = S(200, 200, 200, 200, 200, 200)
OWN = S(401, 401, 404, 200, 404, 404)  # the member's own thing: nobody else's to see

# The expectation table: one line per route of the built app. Keep it sorted by area.
ROUTES: dict[str, Route] = {
    # pages and sessions
    "GET /": Route(S(302, 302, 302, 302, 302, 302)),
    "GET /login": Route(S(200, 200, 302, 302, 302, 302)),
    "POST /login": Route(S(403, 403, 403, 403, 403, 403)),  # no login-form token
    "POST /logout": Route(S(303, 303, 303, 303, 303, 303)),
    "POST /logout/everywhere": Route(S(303, 303, 303, 303, 303, 303)),
    "GET /inbox": Route(S(302, 302, 200, 200, 200, 200)),
    "GET /inbox/ws": Route(S(401, 401, 101, 101, 101, 101), websocket=True),
    "GET /preferences": Route(S(302, 302, 200, 200, 200, 200)),
    "GET /supervisor": Route(S(302, 302, 404, 404, 200, 200)),
    "GET /admin": Route(S(302, 302, 404, 404, 404, 200)),
    "GET /admin/{section}": Route(S(302, 302, 404, 404, 404, 200), ids=admin_section),
    "POST /preferences": Route(S(401, 401, 303, 303, 303, 303), body={"locale": "en"}),
    # a wrong current password: refused with the form again, nothing changed
    "POST /preferences/password": Route(
        S(401, 401, 400, 400, 400, 400),
        body={"current_password": "wrong", "new_password": "x" * 12, "confirm_password": "y"},
    ),
    "GET /static": Route(PUBLIC),
    # the widget: the visitor token is the customer's credential
    "GET /widget.js": Route(PUBLIC),
    "GET /widget/frame": Route(S(404, 404, 404, 404, 404, 404)),  # no inbox named
    "POST /widget/session": Route(PUBLIC, body=widget_session_body),
    "POST /widget/upload": Route(S(401, 201, 401, 401, 401, 401), multipart=True),
    "GET /widget/attachments/{id}": Route(S(401, 200, 401, 401, 401, 401), ids=visitor_attachment),
    "GET /widget/ws": Route(S(401, 101, 401, 401, 401, 401), websocket=True),
    # signed links and channel webhooks: their own credential, the same for everyone
    "GET /csat/{token}": Route(S(404, 404, 404, 404, 404, 404), ids=bad_token),
    "POST /csat/{token}": Route(S(404, 404, 404, 404, 404, 404), ids=bad_token),
    "POST /webhooks/slack/{key}": Route(
        S(404, 404, 404, 404, 404, 404), ids=unknown_inbox_key, body={}
    ),
    "POST /webhooks/{kind}/{key}": Route(
        S(404, 404, 404, 404, 404, 404), ids=unknown_inbox_key, body={}
    ),
    # the API: who am I, inboxes
    "GET /api/v1/openapi.json": Route(PUBLIC),
    "GET /api/v1/me": Route(STAFF),
    "PATCH /api/v1/me": Route(STAFF, body={"locale": "en"}),
    "GET /api/v1/inboxes": Route(READ_SETTINGS),
    # conversations, messages, files
    "GET /api/v1/conversations": Route(STAFF),
    "GET /api/v1/conversations/{id}": Route(SCOPED, ids=conversation),
    "GET /api/v1/conversations/{id}/messages": Route(SCOPED, ids=conversation),
    "POST /api/v1/conversations/{id}/messages": Route(
        S(401, 401, 404, 201, 201, 201), ids=conversation, body={"text": "on it"}
    ),
    "POST /api/v1/conversations/{id}/read": Route(SCOPED, ids=conversation, body={}),
    "POST /api/v1/uploads": Route(S(401, 401, 201, 201, 201, 201), multipart=True),
    "GET /api/v1/attachments/{id}": Route(SCOPED, ids=attachment),
    "GET /api/v1/conversations/{id}/history": Route(SCOPED, ids=conversation),
    "GET /api/v1/conversations/{id}/assist": Route(SCOPED, ids=conversation),
    "POST /api/v1/conversations/{id}/notes": Route(
        S(401, 401, 404, 201, 201, 201), ids=conversation, body={"text": "see @nobody"}
    ),
    "GET /api/v1/mentions": Route(STAFF),
    # the inbox's lists, saved views (each agent's own) and search
    "GET /api/v1/inbox/conversations": Route(STAFF),
    "GET /api/v1/inbox/counts": Route(STAFF),
    "GET /api/v1/inbox/views": Route(STAFF),
    "POST /api/v1/inbox/views": Route(S(401, 401, 201, 201, 201, 201), body={"name": "mine"}),
    "PATCH /api/v1/inbox/views/{id}": Route(OWN, ids=members_view, body={"name": "renamed"}),
    "DELETE /api/v1/inbox/views/{id}": Route(S(401, 401, 404, 204, 404, 404), ids=members_view),
    "GET /api/v1/search": Route(STAFF, suffix="?q=refund"),
    "POST /api/v1/mentions/read": Route(STAFF, body={}),
    "GET /api/v1/teammates": Route(STAFF),
    # canned replies: staff read and fill them in, admins write them
    "GET /api/v1/canned-replies": Route(STAFF),
    "POST /api/v1/canned-replies": Route(ADMIN_WRITE_201, body=new_canned),
    "GET /api/v1/canned-replies/{id}": Route(STAFF, ids=canned),
    "PATCH /api/v1/canned-replies/{id}": Route(DENIED, ids=canned, body={"title": "Hi"}),
    "DELETE /api/v1/canned-replies/{id}": Route(S(401, 401, 403, 403, 403, 204), ids=canned),
    "GET /api/v1/canned-replies/{id}/render": Route(
        SCOPED, ids=canned_in_conversation, suffix="?conversation_id={conversation_id}"
    ),
    # the bot
    "GET /api/v1/conversations/{id}/bot": Route(SCOPED, ids=conversation),
    # 409: the bot is off in this inbox — past the access check, which is what counts here
    "POST /api/v1/conversations/{id}/bot/hand-back": Route(
        S(401, 401, 404, 409, 409, 409), ids=conversation, body={}
    ),
    "GET /api/v1/inboxes/{id}/bot": Route(READ_SETTINGS, ids=inbox),
    "PATCH /api/v1/inboxes/{id}/bot": Route(DENIED, ids=inbox, body={"confidence": 0.7}),
    "GET /api/v1/bot/missed": Route(DENIED),
    "POST /api/v1/bot/missed/{id}/dismiss": Route(S(401, 401, 403, 403, 403, 404), ids=missing),
    # customers
    "GET /api/v1/customers/{id}": Route(SCOPED, ids=customer),
    "PATCH /api/v1/customers/{id}": Route(SCOPED, ids=customer, body={"tier": "vip"}),
    "GET /api/v1/customers/{id}/notes": Route(SCOPED, ids=customer),
    "POST /api/v1/customers/{id}/notes": Route(
        S(401, 401, 404, 201, 201, 201), ids=customer, body={"body": "called back"}
    ),
    "GET /api/v1/customers/{id}/suggestions": Route(SCOPED, ids=customer),
    "POST /api/v1/customers/{id}/merge": Route(
        S(401, 401, 404, 201, 201, 201), ids=customer_pair, body=other_id
    ),
    "POST /api/v1/customer-merges/{id}/undo": Route(SCOPED, ids=merge, body={}),
    # tickets
    "GET /api/v1/tickets": Route(STAFF),
    "POST /api/v1/tickets": Route(
        S(401, 401, 404, 201, 201, 201), ids=a_customer, body=new_ticket_for
    ),
    "GET /api/v1/tickets/{id}": Route(SCOPED, ids=ticket),
    "PATCH /api/v1/tickets/{id}": Route(SCOPED, ids=ticket, body={"priority": "high"}),
    "GET /api/v1/tickets/{id}/notes": Route(SCOPED, ids=ticket),
    "POST /api/v1/tickets/{id}/notes": Route(
        S(401, 401, 404, 201, 201, 201), ids=ticket, body={"body": "a note"}
    ),
    "POST /api/v1/tickets/{id}/merge": Route(SCOPED, ids=ticket_pair, body=other_id),
    "GET /api/v1/tickets/{id}/timeline": Route(SCOPED, ids=ticket),
    "POST /api/v1/tickets/{id}/claim": Route(SCOPED, ids=ticket, body={}),
    # knowledge base: staff read, admins write
    "GET /api/v1/kb/articles": Route(STAFF),
    "POST /api/v1/kb/articles": Route(ADMIN_WRITE_201, body={**HOURS, "key": "matrix_new"}),
    "GET /api/v1/kb/articles/{id}": Route(STAFF, ids=article),
    "PATCH /api/v1/kb/articles/{id}": Route(DENIED, ids=article, body={"question": "Open?"}),
    "GET /api/v1/kb/articles/{id}/versions": Route(STAFF, ids=article),
    "POST /api/v1/kb/articles/{id}/publish": Route(DENIED, ids=article, body={}),
    "POST /api/v1/kb/articles/{id}/unpublish": Route(DENIED, ids=article, body={}),
    "DELETE /api/v1/kb/articles/{id}/draft": Route(DENIED, ids=article_with_draft),
    # SLA settings
    "GET /api/v1/sla/calendars": Route(READ_SETTINGS),
    "POST /api/v1/sla/calendars": Route(ADMIN_WRITE_201, body=lambda a, i: _async(calendar_body())),
    "GET /api/v1/sla/calendars/{id}": Route(READ_SETTINGS, ids=calendar),
    "PATCH /api/v1/sla/calendars/{id}": Route(DENIED, ids=calendar, body={"name": "renamed"}),
    "DELETE /api/v1/sla/calendars/{id}": Route(DENIED, ids=calendar),
    "GET /api/v1/sla/policies": Route(READ_SETTINGS),
    "POST /api/v1/sla/policies": Route(ADMIN_WRITE_201, body=lambda a, i: _async(policy_body())),
    "GET /api/v1/sla/policies/{id}": Route(READ_SETTINGS, ids=policy),
    "PATCH /api/v1/sla/policies/{id}": Route(DENIED, ids=policy, body={"name": "renamed"}),
    "DELETE /api/v1/sla/policies/{id}": Route(DENIED, ids=policy),
    # queues and agents
    "GET /api/v1/queues": Route(STAFF),  # an agent gets the queues they belong to
    "POST /api/v1/queues": Route(ADMIN_WRITE_201, body={"name": "matrix"}),
    "GET /api/v1/queues/{id}": Route(SCOPED, ids=member_queue),
    "PATCH /api/v1/queues/{id}": Route(DENIED, ids=empty_queue, body={"name": "renamed"}),
    "DELETE /api/v1/queues/{id}": Route(DENIED, ids=empty_queue),
    "PUT /api/v1/queues/{id}/members/{user_id}": Route(DENIED, ids=queue_and_member, body={}),
    "DELETE /api/v1/queues/{id}/members/{user_id}": Route(DENIED, ids=queue_and_member),
    "GET /api/v1/agents": Route(READ_SETTINGS),
    "PUT /api/v1/agents/me/presence": Route(STAFF, body={"status": "away"}),
    "GET /api/v1/agents/{id}": Route(S(401, 401, 403, 200, 200, 200), ids=member_agent),
    "PATCH /api/v1/agents/{id}": Route(DENIED, ids=member_agent, body={"capacity": 3}),
    # routing rules
    "GET /api/v1/routing/rules": Route(READ_SETTINGS),
    "POST /api/v1/routing/rules": Route(ADMIN_WRITE_201, body=RULE),
    "PUT /api/v1/routing/rules/order": Route(DENIED, body=rule_order),
    "GET /api/v1/routing/rules/{id}": Route(READ_SETTINGS, ids=rule),
    "PUT /api/v1/routing/rules/{id}": Route(DENIED, ids=rule, body=RULE),
    "DELETE /api/v1/routing/rules/{id}": Route(DENIED, ids=rule),
    "GET /api/v1/routing/rules/{id}/versions": Route(READ_SETTINGS, ids=rule),
    # the admin console: users, the audit log, knowledge-base tools, the "try the bot" box
    "GET /api/v1/users": Route(DENIED),
    "POST /api/v1/users": Route(ADMIN_WRITE_201, body=new_user),
    "PATCH /api/v1/users/{id}": Route(DENIED, ids=staff_user, body={"name": "renamed"}),
    "POST /api/v1/users/{id}/password": Route(DENIED, ids=staff_user, body={}),
    "GET /api/v1/audit": Route(DENIED),
    "POST /api/v1/kb/preview": Route(DENIED, body={"answer_markdown": "**open** 9-5"}),
    "GET /api/v1/kb/articles/{id}/diff": Route(DENIED, ids=article),
    "POST /api/v1/kb/articles/{id}/revert": Route(DENIED, ids=article, body={"version": 1}),
    "POST /api/v1/bot/try": Route(DENIED, body={"text": "when are you open"}),
    "POST /api/v1/bot/missed/{id}/phrasing": Route(
        S(401, 401, 403, 403, 403, 404), ids=missing, body={"article_id": 1}
    ),
    "POST /api/v1/inboxes/{id}/test": Route(DENIED, ids=inbox, body={}),
    # the supervisor dashboard and reports
    "GET /api/v1/supervisor/overview": Route(READ_SETTINGS),
    "GET /api/v1/supervisor/tickets": Route(READ_SETTINGS),
    "GET /api/v1/supervisor/tickets.csv": Route(READ_SETTINGS),
    "POST /api/v1/supervisor/tickets/{id}/assign": Route(
        READ_SETTINGS, ids=ticket, body={"assignee_id": None}
    ),
    "GET /api/v1/reports/{name}": Route(READ_SETTINGS, ids=a_report),
    "GET /api/v1/reports/{name}.csv": Route(READ_SETTINGS, ids=a_report),
    # CSAT: the report for supervisors, the switch for admins
    "GET /api/v1/csat": Route(READ_SETTINGS),
    "GET /api/v1/inboxes/{id}/csat": Route(READ_SETTINGS, ids=inbox),
    "PUT /api/v1/inboxes/{id}/csat": Route(DENIED, ids=inbox, body={"enabled": True}),
}


async def _async(value: dict[str, Any]) -> dict[str, Any]:
    return value


# --- the app's routes ----------------------------------------------------------------------


def app_routes(app: web.Application) -> set[str]:
    """ "METHOD /path" for every route of the app and its sub-apps."""
    found: set[str] = set()

    def walk(current: web.Application, prefix: str) -> None:
        for route in current.router.routes():
            resource = route.resource
            if isinstance(resource, web.PrefixedSubAppResource):
                walk(resource._app, prefix + resource.canonical)
                continue
            assert resource is not None
            found.add(f"{route.method} {prefix}{resource.canonical}")

    walk(app, "")
    return found


def test_every_route_has_an_entry(tmp_path: Any) -> None:
    from switchboard.app import create_app
    from switchboard.settings import Settings

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        secret_key="s" * 48,
        var_dir=tmp_path / "var",
    )
    routes = app_routes(create_app(settings))
    gets = {r.replace("HEAD ", "GET ", 1) for r in routes if r.startswith("HEAD ")}
    assert gets <= routes, "a HEAD route without its GET"
    served = {r for r in routes if not r.startswith("HEAD ")}
    missing = sorted(served - set(ROUTES))
    assert not missing, f"routes with no line in ROUTES (add them): {missing}"
    stale = sorted(set(ROUTES) - served)
    assert not stale, f"lines in ROUTES for routes the app does not have: {stale}"


# --- calling -------------------------------------------------------------------------------


@pytest.fixture
async def world(client: AppClient, db: Database) -> World:
    visitor_token, _visitor_id = await new_visitor(client)
    user_ids: dict[str, int] = {}
    headers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "customer": {"X-Visitor-Token": visitor_token},
    }
    for caller, role in (
        ("outsider", "agent"),
        ("member", "agent"),
        ("supervisor", "supervisor"),
        ("admin", "admin"),
    ):
        user_ids[caller], token = await staff_token(db, f"{caller}@example.com", role)
        headers[caller] = bearer(token)

    async def make_queue(session: Any) -> int:
        queue = Queue(name="matrix queue")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=user_ids["member"]))
        return queue.id

    queue_id = await db.run(make_queue)
    found = await webchat_inbox(db)
    return World(client, db, queue_id, found.id, user_ids, headers, visitor_token)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict, compare=False)


async def call(world: World, key: str, route: Route, caller: str, ids: dict[str, Any]) -> Answer:
    method, path = key.split(" ", 1)
    url = (path + route.suffix).format(**ids)
    if url == "/static":
        url = "/static/app.css"
    headers = dict(world.headers[caller])
    client = world.client
    arrange = Arrange(world)
    if route.websocket:
        query = {"token": world.visitor_token} if caller == "customer" else {}
        try:
            ws = await client.ws_connect(url, headers=headers, params=query)
        except WSServerHandshakeError as exc:
            return Answer(exc.status, b"")
        await ws.close()
        return Answer(101, b"")
    body = route.body
    if callable(body):
        body = await body(arrange, ids)
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    query = dict(route.query)
    if route.multipart:
        from tests.security.support import multipart_file

        data, content_type = multipart_file(tiny_png())
        kwargs["data"] = data
        kwargs["headers"] = {**headers, **content_type}
        query["inbox_id"] = str(world.inbox_id)
    elif key in ("POST /preferences", "POST /preferences/password"):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    response = await client.request(method, url, params=query, **kwargs)
    return Answer(response.status, await response.read(), dict(response.headers))


def _matrix() -> list[Any]:
    """Every route on SQLite; on PostgreSQL the routes whose answer depends on the
    visibility SQL (the outsider's 404), where the two databases could differ. All
    routes on PostgreSQL too cost five minutes on the shared machine for little more."""
    params = [pytest.param("sqlite", key, id=f"sqlite-{key}") for key in sorted(ROUTES)]
    params += [
        pytest.param("postgres", key, id=f"postgres-{key}")
        for key, route in sorted(ROUTES.items())
        if route.expect.outsider == 404 and route.expect.member != 404 and route.ids is not None
    ]
    return params


@pytest.mark.parametrize(("backend", "key"), _matrix(), indirect=["backend"])
async def test_route_answers_each_caller_as_expected(world: World, key: str) -> None:
    route = ROUTES[key]
    arrange = Arrange(world)
    got: dict[str, int] = {}
    for caller in CALLERS:
        ids = await route.ids(arrange) if route.ids else {}
        if key == "POST /api/v1/tickets":
            ids = {"customer_id": ids["customer_id"]}
        answer = await call(world, key, route, caller, ids)
        got[caller] = answer.status
        expected = getattr(route.expect, caller)
        if caller == "outsider" and expected == 404 and route.ids is not None:
            absent = {name: _absent(value) for name, value in ids.items()}
            if key == "POST /api/v1/tickets":
                absent = {"customer_id": int(MISSING_ID)}
            other = await call(world, key, route, caller, absent)
            assert (other.status, other.body) == (answer.status, answer.body), (
                f"{key}: an outsider tells 'not yours' {answer} from 'not there' {other}"
            )
    assert got == route.expect._asdict(), key


def _absent(value: Any) -> Any:
    """An id of the same shape that names nothing."""
    if isinstance(value, str) and value.startswith("att_"):
        return "att_" + secrets.token_urlsafe(18)
    return int(MISSING_ID) if isinstance(value, int) else MISSING_ID
