"""REST routes for SLA calendars and policies under /api/v1/sla.

Supervisors and admins read; only admins write; agents get 403 like on the other admin
routes. Bodies are checked whole (`tickets.sla_admin.check_*`) before anything is
written: a bad time zone, hours out of range or overlapping intervals get a 400 naming
the problem and store nothing. Each ticket's clocks are in the ticket view (`sla`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.appkeys import DB
from switchboard.audit import record
from switchboard.errors import NotFound
from switchboard.models import User
from tickets.access import ticket_id_from
from tickets.sla_admin import (
    calendar_view,
    check_calendar,
    check_policy,
    do_delete_calendar,
    do_delete_policy,
    do_save_calendar,
    do_save_policy,
    get_calendar,
    get_policy,
    policy_view,
)
from tickets.sla_models import SlaCalendar, SlaPolicy
from web.access import access_admin, access_reader
from web.bodies import read_json_object
from web.clientip import client_address


def _reader(request: web.Request) -> User:
    return access_reader(request, "SLA settings")


def _admin(request: web.Request) -> User:
    return access_admin(request, "SLA settings")


def _id(request: web.Request, what: str) -> int:
    found = ticket_id_from(request.match_info["id"])  # the same row-id rule as tickets
    if found is None:
        raise NotFound(f"{what} not found")
    return found


# --- calendars -------------------------------------------------------------------------


async def calendars(request: web.Request) -> web.Response:
    _reader(request)
    async with request.config_dict[DB].reading() as session:
        rows = (await session.execute(select(SlaCalendar).order_by(SlaCalendar.id))).scalars()
        return web.json_response({"calendars": [calendar_view(r) for r in rows]})


async def calendar(request: web.Request) -> web.Response:
    _reader(request)
    calendar_id = _id(request, "calendar")
    async with request.config_dict[DB].reading() as session:
        row = await get_calendar(session, calendar_id)
        return web.json_response({"calendar": calendar_view(row)})


async def _audit(
    session: AsyncSession,
    request: web.Request,
    user: User,
    action: str,
    kind: str,
    view: dict[str, Any],
) -> dict[str, Any]:
    await record(
        session, action, actor=user, address=client_address(request), target_type=kind,
        target_id=view.get("id"), target_label=str(view.get("name", "")), details=view,
    )  # fmt: skip
    return view


async def create_calendar(request: web.Request) -> web.Response:
    user = _admin(request)
    checked = check_calendar(await read_json_object(request))

    async def write(session: AsyncSession) -> dict[str, Any]:
        view = calendar_view(await do_save_calendar(session, checked))
        return await _audit(session, request, user, "sla.calendar.created", "calendar", view)

    return web.json_response({"calendar": await request.config_dict[DB].run(write)}, status=201)


async def update_calendar(request: web.Request) -> web.Response:
    user = _admin(request)
    calendar_id = _id(request, "calendar")
    body = await read_json_object(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        checked = check_calendar(body, await get_calendar(session, calendar_id))
        view = calendar_view(await do_save_calendar(session, checked, calendar_id))
        return await _audit(session, request, user, "sla.calendar.updated", "calendar", view)

    return web.json_response({"calendar": await request.config_dict[DB].run(write)})


async def delete_calendar(request: web.Request) -> web.Response:
    user = _admin(request)
    calendar_id = _id(request, "calendar")

    async def write(session: AsyncSession) -> None:
        await do_delete_calendar(session, calendar_id)
        await _audit(
            session, request, user, "sla.calendar.deleted", "calendar", {"id": calendar_id}
        )

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


# --- policies --------------------------------------------------------------------------


async def policies(request: web.Request) -> web.Response:
    _reader(request)
    async with request.config_dict[DB].reading() as session:
        rows = (await session.execute(select(SlaPolicy).order_by(SlaPolicy.id))).scalars()
        return web.json_response({"policies": [policy_view(r) for r in rows]})


async def policy(request: web.Request) -> web.Response:
    _reader(request)
    policy_id = _id(request, "policy")
    async with request.config_dict[DB].reading() as session:
        return web.json_response({"policy": policy_view(await get_policy(session, policy_id))})


async def create_policy(request: web.Request) -> web.Response:
    user = _admin(request)
    body = await read_json_object(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        view = policy_view(await do_save_policy(session, await check_policy(session, body)))
        return await _audit(session, request, user, "sla.policy.created", "sla_policy", view)

    return web.json_response({"policy": await request.config_dict[DB].run(write)}, status=201)


async def update_policy(request: web.Request) -> web.Response:
    user = _admin(request)
    policy_id = _id(request, "policy")
    body = await read_json_object(request)

    async def write(session: AsyncSession) -> dict[str, Any]:
        checked = await check_policy(session, body, await get_policy(session, policy_id))
        view = policy_view(await do_save_policy(session, checked, policy_id))
        return await _audit(session, request, user, "sla.policy.updated", "sla_policy", view)

    return web.json_response({"policy": await request.config_dict[DB].run(write)})


async def delete_policy(request: web.Request) -> web.Response:
    user = _admin(request)
    policy_id = _id(request, "policy")

    async def write(session: AsyncSession) -> None:
        await do_delete_policy(session, policy_id)
        await _audit(session, request, user, "sla.policy.deleted", "sla_policy", {"id": policy_id})

    await request.config_dict[DB].run(write)
    return web.json_response({"ok": True})


def setup(app: web.Application) -> None:
    app.router.add_get("/sla/calendars", calendars)
    app.router.add_post("/sla/calendars", create_calendar)
    app.router.add_get("/sla/calendars/{id}", calendar)
    app.router.add_patch("/sla/calendars/{id}", update_calendar)
    app.router.add_delete("/sla/calendars/{id}", delete_calendar)
    app.router.add_get("/sla/policies", policies)
    app.router.add_post("/sla/policies", create_policy)
    app.router.add_get("/sla/policies/{id}", policy)
    app.router.add_patch("/sla/policies/{id}", update_policy)
    app.router.add_delete("/sla/policies/{id}", delete_policy)


def openapi_paths() -> dict[str, Any]:
    """The routes above for the OpenAPI document (web/openapi.py)."""
    from web.openapi import _ERROR, _ID, _conflict, _op

    calendar = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "time_zone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
            "hours": {
                "type": "object",
                "description": "weekday → [[HH:MM, HH:MM], …]; an end at or before its start"
                " runs past midnight; 24:00 ends a day; intervals may not overlap",
                "additionalProperties": {"type": "array"},
            },
            "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
        },
    }
    policy = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "calendar_id": {"type": ["integer", "null"], "description": "null: 24/7"},
            "targets": {
                "type": "object",
                "description": "priority → {first_response, next_response, resolution}:"
                " business minutes",
            },
            "escalations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "when": {"enum": ["warning", "breach"]},
                        "action": {"enum": ["notify", "raise_priority", "reassign"]},
                        "metrics": {"type": "array", "items": {"type": "string"}},
                        "user_id": {"type": "integer", "description": "reassign to; else unassign"},
                    },
                },
            },
            "is_default": {"type": "boolean"},
        },
    }

    def only(operation: dict[str, Any], who: str) -> dict[str, Any]:
        operation["responses"]["403"] = {
            "description": f"Only {who}",
            "content": {"application/json": {"schema": _ERROR}},
        }
        return operation

    def crud(kind: str, plural: str, schema: dict[str, Any], in_use: str) -> dict[str, Any]:
        one = {"type": "object", "properties": {kind: schema}}
        many = {"type": "object", "properties": {plural: {"type": "array", "items": schema}}}
        body = {"application/json": {"schema": schema}}
        readers, admins, taken = "supervisors and admins", "admins", "The name is taken"
        return {
            f"/sla/{plural}": {
                "get": only(_op(f"Every SLA {kind}", many), readers),
                "post": only(
                    _conflict(_op(f"Create an SLA {kind}", one, body=body, status="201"), taken),
                    admins,
                ),
            },
            f"/sla/{plural}/{{id}}": {
                "get": only(_op(f"One SLA {kind}", one, params=[_ID]), readers),
                "patch": only(
                    _conflict(
                        _op(
                            f"Change an SLA {kind}; fields left out keep their values",
                            one,
                            params=[_ID],
                            body=body,
                        ),
                        taken,
                    ),
                    admins,
                ),
                "delete": only(
                    _conflict(
                        _op(f"Delete an SLA {kind}", {"type": "object"}, params=[_ID]), in_use
                    ),
                    admins,
                ),
            },
        }

    return {
        **crud("calendar", "calendars", calendar, "A policy uses the calendar"),
        **crud("policy", "policies", policy, "An active ticket or running clock uses the policy"),
    }
