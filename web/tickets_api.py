"""REST routes for tickets under /api/v1: list, create, read, update, notes, merge, timeline.

Staff only (agent and above), by bearer token or browser session (with its CSRF token
for writes); a visitor token is no credential here. Every ticket is reached through
`web.access.access_ticket_by_id` and every list through `visible_tickets`, so
queue scoping lands in one place. Bodies are checked whole before anything is written;
only the editable fields (`tickets.checks.EDITABLE`) are read from them, so ids,
customers, queues and timestamps are never taken from a caller.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.appkeys import DB
from switchboard.errors import InvalidInput
from switchboard.models import User
from tickets.checks import (
    check_changes,
    check_priority,
    check_row_id,
    check_subject,
    check_tag,
    check_tags,
)
from tickets.lifecycle import parse_status
from tickets.listing import UNASSIGNED, Order, TicketFilter, Unassigned, list_tickets
from tickets.merge import do_merge_tickets
from tickets.models import TicketPriority, TicketSource
from tickets.service import (
    do_add_note,
    do_create_ticket,
    do_open_for_conversation,
    do_update_ticket,
    full_view,
    note_view,
    notes,
    open_ticket_for,
    ticket_views,
    timeline,
)
from web.access import (
    access_conversation_by_id,
    access_customer_by_id,
    access_staff,
    access_ticket_by_id,
    ticket_id_from,
    visible_tickets,
)
from web.auth import require_user
from web.bodies import read_json_object

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIST_PARAMS = frozenset(
    {
        "status",
        "priority",
        "assignee_id",
        "tag",
        "customer_id",
        "conversation_id",
        "order",
        "cursor",
        "limit",
    }
)


def _staff(request: web.Request) -> User:
    """The caller, who must be staff; anyone else learns nothing (401 or 404)."""
    return access_staff(request)


def _actor(user: User) -> str:
    return f"agent:{user.id}"


def _query_id(raw: str, name: str) -> int:
    value = ticket_id_from(raw)
    if value is None:
        raise InvalidInput(f"{name} must be a positive whole number", code=f"invalid_{name}")
    return value


def _list_of(raw: str, parse: Any) -> tuple[Any, ...]:
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > 10:
        raise InvalidInput("at most 10 values per filter")
    return tuple(dict.fromkeys(parse(p) for p in parts))


def _filters(request: web.Request) -> tuple[TicketFilter, Order, str | None, int]:
    query = request.query
    unknown = sorted(set(query) - LIST_PARAMS)
    if unknown:
        raise InvalidInput(f"unknown filter {unknown[0][:40]!r}", code="unknown_filter")
    if any(len(query.getall(name)) > 1 for name in query):
        raise InvalidInput("give each filter once (several values: comma-separated)")
    assignee: int | Unassigned | None = None
    raw_assignee = query.get("assignee_id")
    if raw_assignee == "none":
        assignee = UNASSIGNED
    elif raw_assignee == "me":
        assignee = require_user(request).id
    elif raw_assignee is not None:
        assignee = _query_id(raw_assignee, "assignee_id")
    raw_order = query.get("order", Order.NEWEST.value)
    if raw_order not in Order.__members__.values():
        raise InvalidInput("order must be newest or oldest", code="invalid_order")
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    filters = TicketFilter(
        statuses=_list_of(query["status"], parse_status) if "status" in query else (),
        priorities=_list_of(query["priority"], check_priority) if "priority" in query else (),
        assignee=assignee,
        tag=check_tag(query["tag"]) if "tag" in query else None,
        customer_id=_query_id(query["customer_id"], "customer_id")
        if "customer_id" in query
        else None,
        conversation_id=_query_id(query["conversation_id"], "conversation_id")
        if "conversation_id" in query
        else None,
    )
    return filters, Order(raw_order), query.get("cursor"), int(raw_limit)


async def list_route(request: web.Request) -> web.Response:
    user = _staff(request)
    filters, order, cursor, limit = _filters(request)
    async with request.config_dict[DB].reading() as session:
        page = await list_tickets(
            session,
            visible=visible_tickets(user),
            filters=filters,
            order=order,
            cursor=cursor,
            limit=limit,
        )
        views = await ticket_views(session, page.tickets)
    return web.json_response({"tickets": views, "next_cursor": page.next_cursor})


async def create_route(request: web.Request) -> web.Response:
    """Open a ticket for a conversation (its open ticket if it has one: 200) or for a
    customer without one (201)."""
    user = _staff(request)
    data = await read_json_object(request)
    has_conversation = data.get("conversation_id") is not None
    has_customer = data.get("customer_id") is not None
    if has_conversation == has_customer:
        raise InvalidInput("give either conversation_id or customer_id", code="invalid_target")
    target = check_row_id(
        data["conversation_id"] if has_conversation else data["customer_id"],
        "conversation_id" if has_conversation else "customer_id",
    )
    subject = check_subject(data.get("subject"))
    priority = check_priority(data["priority"]) if "priority" in data else TicketPriority.NORMAL
    tags = check_tags(data["tags"]) if "tags" in data else ()

    async def write(session: AsyncSession) -> tuple[dict[str, Any], int]:
        if has_conversation:
            conversation = await access_conversation_by_id(session, user, target)
            existing = await open_ticket_for(session, conversation.id)
            if existing is not None:
                # Through the chokepoint: a ticket in a queue the caller is not in is a
                # 404 here as everywhere, not a way around queue scoping.
                visible = await access_ticket_by_id(session, user, existing.id)
                return await full_view(session, visible), 200
            ticket = await do_open_for_conversation(
                session,
                conversation_id=conversation.id,
                source=TicketSource.AGENT,
                reason=None,
                actor=_actor(user),
                subject=subject,
                priority=priority,
                tags=tags,
            )
        else:
            customer = await access_customer_by_id(session, user, target)
            ticket = await do_create_ticket(
                session,
                customer_id=customer.id,
                actor=_actor(user),
                subject=subject,
                priority=priority,
                tags=tags,
            )
        return await full_view(session, ticket), 201

    view, status = await request.config_dict[DB].run(write)
    return web.json_response({"ticket": view}, status=status)


async def get_route(request: web.Request) -> web.Response:
    user = _staff(request)
    async with request.config_dict[DB].reading() as session:
        ticket = await access_ticket_by_id(session, user, request.match_info["id"])
        return web.json_response({"ticket": await full_view(session, ticket)})


async def update_route(request: web.Request) -> web.Response:
    user = _staff(request)
    raw_id = request.match_info["id"]
    changes = check_changes(await read_json_object(request))

    async def write(session: AsyncSession) -> dict[str, Any]:
        ticket = await access_ticket_by_id(session, user, raw_id)
        changed = await do_update_ticket(session, ticket.id, changes, actor=_actor(user), by=user)
        return await full_view(session, changed)

    return web.json_response({"ticket": await request.config_dict[DB].run(write)})


async def notes_route(request: web.Request) -> web.Response:
    user = _staff(request)
    async with request.config_dict[DB].reading() as session:
        ticket = await access_ticket_by_id(session, user, request.match_info["id"])
        return web.json_response({"notes": await notes(session, ticket.id)})


async def add_note_route(request: web.Request) -> web.Response:
    user = _staff(request)
    raw_id = request.match_info["id"]
    data = await read_json_object(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        ticket = await access_ticket_by_id(session, user, raw_id)
        note = await do_add_note(session, ticket.id, body=data.get("body"), author_user_id=user.id)
        return note_view(note)

    return web.json_response({"note": await request.config_dict[DB].run(write)}, status=201)


async def merge_route(request: web.Request) -> web.Response:
    """Merge the ticket named by `other_id` into the one in the path."""
    user = _staff(request)
    raw_id = request.match_info["id"]
    other = (await read_json_object(request)).get("other_id")
    if ticket_id_from(other) is None or isinstance(other, str):
        raise InvalidInput("other_id must be a ticket id", code="invalid_other_id")

    async def write(session: AsyncSession) -> dict[str, Any]:
        survivor = await access_ticket_by_id(session, user, raw_id)
        merged = await access_ticket_by_id(session, user, other)
        result = await do_merge_tickets(
            session, survivor_id=survivor.id, merged_id=merged.id, actor=_actor(user), by=user
        )
        return await full_view(session, result)

    return web.json_response({"ticket": await request.config_dict[DB].run(write)})


async def timeline_route(request: web.Request) -> web.Response:
    user = _staff(request)
    raw_after = request.query.get("after_id", "0")
    if not (raw_after.isascii() and raw_after.isdigit()) or len(raw_after) > 10:
        raise InvalidInput("after_id must be a whole number", code="invalid_after_id")
    async with request.config_dict[DB].reading() as session:
        ticket = await access_ticket_by_id(session, user, request.match_info["id"])
        entries = await timeline(session, ticket.id, after_id=min(int(raw_after), 2**31 - 1))
    return web.json_response({"timeline": entries})


def setup(app: web.Application) -> None:
    app.router.add_get("/tickets", list_route)
    app.router.add_post("/tickets", create_route)
    app.router.add_get("/tickets/{id}", get_route)
    app.router.add_patch("/tickets/{id}", update_route)
    app.router.add_get("/tickets/{id}/notes", notes_route)
    app.router.add_post("/tickets/{id}/notes", add_note_route)
    app.router.add_post("/tickets/{id}/merge", merge_route)
    app.router.add_get("/tickets/{id}/timeline", timeline_route)
