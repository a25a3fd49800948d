"""REST routes for routing under /api/v1: queues and members, agents' routing profiles
and presence, routing rules (with order and versions), and claiming a ticket.

Admins write; supervisors read everything; agents read their own queues and profile and
set their own presence. Bodies are checked whole before anything is written.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from routing import rulebook, service
from routing.models import RoutingRule
from routing.presence import do_choose_presence
from routing.rules import check_rule
from switchboard.appkeys import DB
from switchboard.audit import record
from switchboard.errors import Forbidden, InvalidInput, NotFound
from switchboard.models import Role, User
from tickets.checks import TicketChanges
from tickets.service import claim_conflict, do_update_ticket, full_view, lock_ticket
from web.access import (
    access_admin,
    access_reader,
    access_staff,
    access_ticket_by_id,
    ticket_id_from,
)
from web.bodies import read_json_object
from web.clientip import client_address


def _staff(request: web.Request) -> User:
    return access_staff(request)


def _supervisor(request: web.Request) -> User:
    return access_reader(request, "this")


def _admin(request: web.Request) -> User:
    return access_admin(request, "routing")


def _path_id(request: web.Request, name: str = "id", what: str = "queue") -> int:
    value = ticket_id_from(request.match_info[name])
    if value is None:
        raise NotFound(f"{what} not found")
    return value


async def _audit(
    session: AsyncSession,
    request: web.Request,
    user: User,
    action: str,
    kind: str,
    target: object,
    details: dict[str, Any] | None = None,
) -> None:
    await record(
        session, action, actor=user, address=client_address(request), target_type=kind,
        target_id=target, details=details,
    )  # fmt: skip


# --- queues ---------------------------------------------------------------------------------


async def list_queues_route(request: web.Request) -> web.Response:
    user = _staff(request)
    member = user.id if user.role == Role.AGENT else None
    async with request.config_dict[DB].reading() as session:
        queues = await service.list_queues(session, member=member)
    return web.json_response({"queues": queues})


async def _one_queue(session: AsyncSession, queue_id: int) -> dict[str, Any]:
    queue = await service.get_queue(session, queue_id)
    return service.queue_view(queue, (await service.members_of(session, [queue.id]))[queue.id])


async def get_queue_route(request: web.Request) -> web.Response:
    user = _staff(request)
    queue_id = _path_id(request)
    async with request.config_dict[DB].reading() as session:
        view = await _one_queue(session, queue_id)
    if user.role == Role.AGENT and user.id not in view["member_ids"]:
        raise NotFound("queue not found")
    return web.json_response({"queue": view})


async def create_queue_route(request: web.Request) -> web.Response:
    user = _admin(request)
    fields = service.check_queue_fields(await read_json_object(request), partial=False)

    async def write(session: AsyncSession) -> dict[str, Any]:
        queue = await service.do_create_queue(session, fields)
        await _audit(session, request, user, "queue.created", "queue", queue.id, fields)
        return service.queue_view(queue, [])

    return web.json_response({"queue": await request.config_dict[DB].run(write)}, status=201)


async def update_queue_route(request: web.Request) -> web.Response:
    user = _admin(request)
    queue_id = _path_id(request)
    fields = service.check_queue_fields(await read_json_object(request), partial=True)

    async def write(session: AsyncSession) -> dict[str, Any]:
        await service.do_update_queue(session, queue_id, fields)
        await _audit(session, request, user, "queue.updated", "queue", queue_id, fields)
        return await _one_queue(session, queue_id)

    return web.json_response({"queue": await request.config_dict[DB].run(write)})


async def delete_queue_route(request: web.Request) -> web.Response:
    user = _admin(request)
    queue_id = _path_id(request)

    async def write(session: AsyncSession) -> None:
        await service.do_delete_queue(session, queue_id)
        await _audit(session, request, user, "queue.deleted", "queue", queue_id)

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


async def add_member_route(request: web.Request) -> web.Response:
    admin = _admin(request)
    queue_id = _path_id(request)
    user_id = _path_id(request, "user_id", "user")

    async def write(session: AsyncSession) -> dict[str, Any]:
        await service.do_add_member(session, queue_id, user_id)
        await _audit(
            session, request, admin, "queue.member_added", "queue", queue_id, {"user_id": user_id}
        )
        return await _one_queue(session, queue_id)

    return web.json_response({"queue": await request.config_dict[DB].run(write)})


async def remove_member_route(request: web.Request) -> web.Response:
    admin = _admin(request)
    queue_id = _path_id(request)
    user_id = _path_id(request, "user_id", "user")

    async def write(session: AsyncSession) -> dict[str, Any]:
        await service.do_remove_member(session, queue_id, user_id)
        await _audit(
            session, request, admin, "queue.member_removed", "queue", queue_id, {"user_id": user_id}
        )
        return await _one_queue(session, queue_id)

    return web.json_response({"queue": await request.config_dict[DB].run(write)})


# --- agents and presence -------------------------------------------------------------------


async def list_agents_route(request: web.Request) -> web.Response:
    _supervisor(request)
    async with request.config_dict[DB].reading() as session:
        agents = await service.list_agents(session)
    return web.json_response({"agents": agents})


async def get_agent_route(request: web.Request) -> web.Response:
    user = _staff(request)
    raw = request.match_info["id"]
    agent_id = user.id if raw == "me" else _path_id(request, what="agent")
    if user.role == Role.AGENT and agent_id != user.id:
        raise Forbidden("agents see only their own profile")
    async with request.config_dict[DB].reading() as session:
        found = await service.list_agents(session, [agent_id])
    if not found:
        raise NotFound("agent not found")
    return web.json_response({"agent": found[0]})


async def update_agent_route(request: web.Request) -> web.Response:
    user = _admin(request)
    agent_id = _path_id(request, what="agent")
    fields = service.check_profile_fields(await read_json_object(request))

    async def write(session: AsyncSession) -> dict[str, Any]:
        await service.do_update_profile(session, agent_id, fields)
        await _audit(session, request, user, "agent.updated", "user", agent_id, fields)
        return (await service.list_agents(session, [agent_id]))[0]

    return web.json_response({"agent": await request.config_dict[DB].run(write)})


async def set_presence_route(request: web.Request) -> web.Response:
    """The caller's own choice: online (takes new tickets) or away."""
    user = _staff(request)
    status = (await read_json_object(request)).get("status")

    async def write(session: AsyncSession) -> dict[str, Any]:
        await do_choose_presence(session, user.id, status)
        return (await service.list_agents(session, [user.id]))[0]

    return web.json_response({"agent": await request.config_dict[DB].run(write)})


# --- rules -----------------------------------------------------------------------------------


async def list_rules_route(request: web.Request) -> web.Response:
    _supervisor(request)
    async with request.config_dict[DB].reading() as session:
        rules = [rulebook.rule_view(r) for r in await rulebook.list_rules(session)]
    return web.json_response({"rules": rules})


async def get_rule_route(request: web.Request) -> web.Response:
    _supervisor(request)
    rule_id = _path_id(request, what="rule")
    async with request.config_dict[DB].reading() as session:
        rule = await rulebook.get_rule(session, rule_id)
    return web.json_response({"rule": rulebook.rule_view(rule)})


async def create_rule_route(request: web.Request) -> web.Response:
    user = _admin(request)
    checked = check_rule(await read_json_object(request))

    async def write(session: AsyncSession) -> RoutingRule:
        rule = await rulebook.do_create_rule(session, checked, user.id)
        await _audit(session, request, user, "routing_rule.created", "routing_rule", rule.id)
        return rule

    rule = await request.config_dict[DB].run(write)
    return web.json_response({"rule": rulebook.rule_view(rule)}, status=201)


async def update_rule_route(request: web.Request) -> web.Response:
    user = _admin(request)
    rule_id = _path_id(request, what="rule")
    checked = check_rule(await read_json_object(request))

    async def write(session: AsyncSession) -> RoutingRule:
        rule = await rulebook.do_update_rule(session, rule_id, checked, user.id)
        await _audit(session, request, user, "routing_rule.updated", "routing_rule", rule_id)
        return rule

    rule = await request.config_dict[DB].run(write)
    return web.json_response({"rule": rulebook.rule_view(rule)})


async def delete_rule_route(request: web.Request) -> web.Response:
    user = _admin(request)
    rule_id = _path_id(request, what="rule")

    async def write(session: AsyncSession) -> None:
        await rulebook.do_delete_rule(session, rule_id, user.id)
        await _audit(session, request, user, "routing_rule.deleted", "routing_rule", rule_id)

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


async def reorder_rules_route(request: web.Request) -> web.Response:
    user = _admin(request)
    ids = (await read_json_object(request)).get("ids")
    if not isinstance(ids, list) or len(ids) > rulebook.MAX_RULES:
        raise InvalidInput("ids: must be the list of every rule id", code="invalid_order")
    checked = []
    for raw in ids:
        value = ticket_id_from(raw) if isinstance(raw, int) else None
        if value is None:
            raise InvalidInput("ids: each must be a rule id", code="invalid_order")
        checked.append(value)

    async def write(session: AsyncSession) -> list[dict[str, Any]]:
        rules = await rulebook.do_reorder_rules(session, checked, user.id)
        await _audit(
            session, request, user, "routing_rule.reordered", "routing_rule", None, {"ids": checked}
        )
        return [rulebook.rule_view(r) for r in rules]

    return web.json_response({"rules": await request.config_dict[DB].run(write)})


async def rule_versions_route(request: web.Request) -> web.Response:
    _supervisor(request)
    rule_id = _path_id(request, what="rule")
    async with request.config_dict[DB].reading() as session:
        versions = await rulebook.rule_versions(session, rule_id)
    return web.json_response({"versions": versions})


# --- claiming ---------------------------------------------------------------------------------


async def claim_route(request: web.Request) -> web.Response:
    """Take an unassigned ticket. Already the caller's: 200 as it is; someone else's: 409
    naming them. The ticket's row lock decides between two claims at once."""
    user = _staff(request)
    raw_id = request.match_info["id"]

    async def write(session: AsyncSession) -> dict[str, Any]:
        visible = await access_ticket_by_id(session, user, raw_id)
        ticket = await lock_ticket(session, visible.id)
        await claim_conflict(session, ticket, user.id)
        if ticket.assignee_user_id is None:
            # Locks the caller's routing profile: a claim may take them past capacity
            # (their choice), but the automatic assigner then counts it.
            ticket = await do_update_ticket(
                session,
                ticket.id,
                TicketChanges(assignee_user_id=user.id),
                actor=f"agent:{user.id}",
                by=user,
            )
        return await full_view(session, ticket)

    return web.json_response({"ticket": await request.config_dict[DB].run(write)})


def setup(app: web.Application) -> None:
    app.router.add_get("/queues", list_queues_route)
    app.router.add_post("/queues", create_queue_route)
    app.router.add_get("/queues/{id}", get_queue_route)
    app.router.add_patch("/queues/{id}", update_queue_route)
    app.router.add_delete("/queues/{id}", delete_queue_route)
    app.router.add_put("/queues/{id}/members/{user_id}", add_member_route)
    app.router.add_delete("/queues/{id}/members/{user_id}", remove_member_route)
    app.router.add_get("/agents", list_agents_route)
    app.router.add_put("/agents/me/presence", set_presence_route)
    app.router.add_get("/agents/{id}", get_agent_route)
    app.router.add_patch("/agents/{id}", update_agent_route)
    app.router.add_get("/routing/rules", list_rules_route)
    app.router.add_post("/routing/rules", create_rule_route)
    app.router.add_put("/routing/rules/order", reorder_rules_route)
    app.router.add_get("/routing/rules/{id}", get_rule_route)
    app.router.add_put("/routing/rules/{id}", update_rule_route)
    app.router.add_delete("/routing/rules/{id}", delete_rule_route)
    app.router.add_get("/routing/rules/{id}/versions", rule_versions_route)
    app.router.add_post("/tickets/{id}/claim", claim_route)
