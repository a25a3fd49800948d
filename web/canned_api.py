"""REST routes for canned replies under /api/v1: every staff member reads them and
inserts them with placeholders filled for a conversation; admins create, change and
delete them (each write audited). The admin console's page uses these routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.canned import (
    canned_view,
    check_canned_fields,
    do_create_canned,
    do_delete_canned,
    do_update_canned,
    fill_placeholders,
    get_canned,
    list_canned,
    placeholder_values,
)
from customers.models import Customer
from switchboard.appkeys import DB
from switchboard.audit import record
from switchboard.errors import InvalidInput, NotFound
from tickets.service import open_ticket_for
from web.access import access_admin, access_conversation_by_id, access_staff, row_id_from
from web.bodies import read_json_object
from web.clientip import client_address


def _reply_id(request: web.Request) -> int:
    found = row_id_from(request.match_info["id"])
    if found is None:
        raise NotFound("canned reply not found")
    return found


async def list_route(request: web.Request) -> web.Response:
    access_staff(request)
    async with request.config_dict[DB].reading() as session:
        rows = await list_canned(session)
    return web.json_response({"canned_replies": [canned_view(r) for r in rows]})


async def get_route(request: web.Request) -> web.Response:
    access_staff(request)
    reply_id = _reply_id(request)
    async with request.config_dict[DB].reading() as session:
        reply = await get_canned(session, reply_id)
        return web.json_response({"canned_reply": canned_view(reply)})


async def create_route(request: web.Request) -> web.Response:
    admin = access_admin(request, "canned replies")
    fields = check_canned_fields(await read_json_object(request), creating=True)

    async def write(session: AsyncSession) -> dict[str, Any]:
        reply = await do_create_canned(session, fields, user_id=admin.id)
        await record(
            session,
            "canned_reply.created",
            actor=admin,
            address=client_address(request),
            target_type="canned_reply",
            target_id=reply.id,
            target_label=reply.shortcut,
        )
        return canned_view(reply)

    view = await request.config_dict[DB].run(write)
    return web.json_response({"canned_reply": view}, status=201)


async def update_route(request: web.Request) -> web.Response:
    admin = access_admin(request, "canned replies")
    reply_id = _reply_id(request)
    fields = check_canned_fields(await read_json_object(request), creating=False)

    async def write(session: AsyncSession) -> dict[str, Any]:
        reply = await do_update_canned(session, reply_id, fields, user_id=admin.id)
        await record(
            session,
            "canned_reply.updated",
            actor=admin,
            address=client_address(request),
            target_type="canned_reply",
            target_id=reply.id,
            target_label=reply.shortcut,
            details={"fields": sorted(fields)},
        )
        return canned_view(reply)

    return web.json_response({"canned_reply": await request.config_dict[DB].run(write)})


async def delete_route(request: web.Request) -> web.Response:
    admin = access_admin(request, "canned replies")
    reply_id = _reply_id(request)

    async def write(session: AsyncSession) -> None:
        reply = await get_canned(session, reply_id)
        await record(
            session,
            "canned_reply.deleted",
            actor=admin,
            address=client_address(request),
            target_type="canned_reply",
            target_id=reply.id,
            target_label=reply.shortcut,
        )
        await do_delete_canned(session, reply_id)

    await request.config_dict[DB].run(write)
    return web.Response(status=204)


async def render_route(request: web.Request) -> web.Response:
    """The reply's body with placeholders filled for one conversation's customer."""
    user = access_staff(request)
    reply_id = _reply_id(request)
    raw = request.query.get("conversation_id")
    if raw is None or row_id_from(raw) is None:
        raise InvalidInput("conversation_id must be a conversation id", code="invalid_conversation")
    async with request.config_dict[DB].reading() as session:
        conversation = await access_conversation_by_id(session, user, raw)
        reply = await get_canned(session, reply_id)
        customer = await session.get(Customer, conversation.customer_id)
        ticket = await open_ticket_for(session, conversation.id)
        values = placeholder_values(
            customer=customer,
            agent=user,
            conversation=conversation,
            ticket_id=ticket.id if ticket else None,
        )
        text = fill_placeholders(reply.body, values)
    return web.json_response({"text": text, "canned_reply": canned_view(reply)})


def setup(app: web.Application) -> None:
    app.router.add_get("/canned-replies", list_route)
    app.router.add_post("/canned-replies", create_route)
    app.router.add_get("/canned-replies/{id}", get_route)
    app.router.add_patch("/canned-replies/{id}", update_route)
    app.router.add_delete("/canned-replies/{id}", delete_route)
    app.router.add_get("/canned-replies/{id}/render", render_route)
