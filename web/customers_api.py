"""REST routes for customers under /api/v1: profile (read and PATCH tier, lifecycle
stage, tags, attributes), staff notes, merge suggestions, merge, undo.

Staff only (agent and above), by bearer token or browser session (with its CSRF token
for POSTs and PATCHes); a visitor token is no credential here. Every read goes through
`web.access.access_customer_by_id` (an agent sees a customer when they may see one of
its conversations or tickets): a customer the caller may not see and one that does not
exist get the same 404. Request bodies name only the other record: ids, roles, owners and the
actor come from the path and the caller, never from fields a caller sends.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation
from conversations.service import conversation_view
from customers.merge import do_merge, do_unmerge, merge_view
from customers.models import Customer, CustomerMerge, Identity
from customers.profile import (
    check_note_body,
    check_profile_changes,
    do_add_note,
    do_update_profile,
    note_view,
    notes,
    profile_fields,
)
from customers.service import final_customer_id
from customers.suggestions import merge_suggestions
from switchboard.appkeys import DB
from switchboard.errors import InvalidInput
from switchboard.models import User
from web.access import (
    access_customer_by_id,
    access_merge_by_id,
    access_staff,
    may_see_customer,
    visible_conversations,
)
from web.bodies import read_json_object

MAX_CONVERSATIONS_SHOWN = 100


def _summary(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "verified_email": customer.verified_email,
        "phone": customer.phone,
    }


async def _profile(session: AsyncSession, user: User, customer: Customer) -> dict[str, Any]:
    identities = await session.execute(
        select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id)
    )
    conversations = select(Conversation).where(
        Conversation.customer_id == customer.id, visible_conversations(user)
    )
    conversations = conversations.order_by(
        Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc()
    ).limit(MAX_CONVERSATIONS_SHOWN)
    merges = await session.execute(
        select(CustomerMerge)
        .where(
            or_(CustomerMerge.survivor_id == customer.id, CustomerMerge.merged_id == customer.id),
            CustomerMerge.undone_at.is_(None),
        )
        .order_by(CustomerMerge.id)
    )
    merged_into = None
    if customer.merged_into_id is not None:
        merged_into = await final_customer_id(session, customer.id)
    return {
        **_summary(customer),
        **await profile_fields(session, customer),
        "created_at": customer.created_at.isoformat(),
        # Set on a record merged away: the one to show instead (the end of any chain).
        "merged_into": merged_into,
        "identities": [
            {
                "id": i.id,
                "inbox_id": i.inbox_id,
                "channel": i.channel,
                "external_id": i.external_id,
                "display_name": i.display_name,
                "verified": i.verified,
                "reachable": i.reachable,
            }
            for i in identities.scalars()
        ],
        "conversations": [
            conversation_view(c) for c in (await session.execute(conversations)).scalars()
        ],
        "merges": [merge_view(m) for m in merges.scalars()],
    }


async def customer(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        found = await access_customer_by_id(session, user, request.match_info["id"])
        return web.json_response({"customer": await _profile(session, user, found)})


async def update_customer(request: web.Request) -> web.Response:
    """Change the profile: tier, lifecycle_stage, tags, attributes (nothing else)."""
    user = access_staff(request)
    raw_id = request.match_info["id"]
    changes = check_profile_changes(await read_json_object(request))

    async def write(session: AsyncSession) -> dict[str, Any]:
        found = await access_customer_by_id(session, user, raw_id)
        await do_update_profile(session, found.id, changes)
        return await _profile(session, user, found)

    return web.json_response({"customer": await request.config_dict[DB].run(write)})


async def customer_notes(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        found = await access_customer_by_id(session, user, request.match_info["id"])
        return web.json_response({"notes": [note_view(n) for n in await notes(session, found.id)]})


async def add_customer_note(request: web.Request) -> web.Response:
    user = access_staff(request)
    raw_id = request.match_info["id"]
    data = await read_json_object(request)
    unknown = sorted(set(data) - {"body"})
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: unknown field", code="unknown_field")
    body = check_note_body(data.get("body"))

    async def write(session: AsyncSession) -> dict[str, Any]:
        found = await access_customer_by_id(session, user, raw_id)
        return note_view(await do_add_note(session, found.id, body, author_user_id=user.id))

    return web.json_response({"note": await request.config_dict[DB].run(write)}, status=201)


async def suggestions(request: web.Request) -> web.Response:
    user = access_staff(request)
    async with request.config_dict[DB].reading() as session:
        found = await access_customer_by_id(session, user, request.match_info["id"])
        rows = [
            {"customer": _summary(s.customer), "reasons": list(s.reasons)}
            for s in await merge_suggestions(session, found)
            if await may_see_customer(session, user, s.customer.id)
        ]
    return web.json_response({"suggestions": rows})


async def merge(request: web.Request) -> web.Response:
    """Merge the record named by `other_id` into the one in the path."""
    user = access_staff(request)
    raw_survivor = request.match_info["id"]
    data = await read_json_object(request)
    other = data.get("other_id")
    if isinstance(other, bool) or not isinstance(other, int | str):
        raise InvalidInput("other_id must be a customer id")

    async def write(session: AsyncSession) -> dict[str, Any]:
        survivor = await access_customer_by_id(session, user, raw_survivor)
        merged = await access_customer_by_id(session, user, other)
        record = await do_merge(
            session, survivor_id=survivor.id, merged_id=merged.id, actor_user_id=user.id
        )
        return merge_view(record)

    return web.json_response({"merge": await request.config_dict[DB].run(write)}, status=201)


async def undo_merge(request: web.Request) -> web.Response:
    user = access_staff(request)
    raw_id = request.match_info["id"]

    async def write(session: AsyncSession) -> dict[str, Any]:
        record = await access_merge_by_id(session, user, raw_id)
        return merge_view(await do_unmerge(session, merge_id=record.id, actor_user_id=user.id))

    return web.json_response({"merge": await request.config_dict[DB].run(write)})


def setup(app: web.Application) -> None:
    app.router.add_get("/customers/{id}", customer)
    app.router.add_patch("/customers/{id}", update_customer)
    app.router.add_get("/customers/{id}/notes", customer_notes)
    app.router.add_post("/customers/{id}/notes", add_customer_note)
    app.router.add_get("/customers/{id}/suggestions", suggestions)
    app.router.add_post("/customers/{id}/merge", merge)
    app.router.add_post("/customer-merges/{id}/undo", undo_merge)
