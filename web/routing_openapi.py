"""The routing part of the OpenAPI document (`web.openapi` merges it in)."""

from __future__ import annotations

from typing import Any

from web.openapi import _ERROR, _ID, _conflict, _op

_OBJ = {"type": "object"}
_USER_ID = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _forbidden(operation: dict[str, Any], who: str) -> dict[str, Any]:
    operation["responses"]["403"] = {
        "description": f"Only {who}",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return operation


QUEUE_BODY = _json(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "strategy": {"enum": ["round_robin", "least_loaded", "skills"]},
        },
    }
)
RULE_BODY = _json(
    {
        "type": "object",
        "required": ["name", "actions"],
        "properties": {
            "name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "conditions": {
                "type": "object",
                "description": "channels, inbox_ids, languages, customer_tiers, customer_tags, "
                "handoff_reasons, intents, keywords, business_hours "
                "{timezone, weekly: {mon: [[HH:MM, HH:MM]]}, inside}",
            },
            "actions": {
                "type": "object",
                "description": "queue_id, priority, add_tags, sla_policy_id, assign_user_id, "
                "require_skills",
            },
        },
    }
)


def routing_paths() -> dict[str, Any]:
    admins = "admins"
    return {
        "/queues": {
            "get": _op("Queues (an agent: only their own)", {"type": "object"}),
            "post": _forbidden(
                _conflict(
                    _op("Create a queue", _OBJ, body=QUEUE_BODY, status="201"),
                    "A queue has that name",
                ),
                admins,
            ),
        },
        "/queues/{id}": {
            "get": _op("One queue with its member ids", _OBJ, params=[_ID]),
            "patch": _forbidden(
                _op("Rename it or change its strategy", _OBJ, params=[_ID], body=QUEUE_BODY),
                admins,
            ),
            "delete": _conflict(
                _forbidden(_op("Delete it (tickets keep assignees)", _OBJ, params=[_ID]), admins),
                "It still has tickets not closed (the message says how many)",
            ),
        },
        "/queues/{id}/members/{user_id}": {
            "put": _forbidden(_op("Add a member", _OBJ, params=[_ID, _USER_ID]), admins),
            "delete": _forbidden(
                _op("Remove a member (their view narrows at once)", _OBJ, params=[_ID, _USER_ID]),
                admins,
            ),
        },
        "/agents": {
            "get": _forbidden(
                _op("Staff with capacity, skills, languages, presence, queues, load", _OBJ),
                "supervisors and admins",
            )
        },
        "/agents/{id}": {
            "get": _op("One agent (`me` for oneself; agents: only themselves)", _OBJ, params=[_ID]),
            "patch": _forbidden(
                _op(
                    "Set capacity, skills, languages",
                    _OBJ,
                    params=[_ID],
                    body=_json(
                        {
                            "type": "object",
                            "properties": {
                                "capacity": {"type": "integer", "minimum": 0, "maximum": 100},
                                "skills": {"type": "array", "items": {"type": "string"}},
                                "languages": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    ),
                ),
                admins,
            ),
        },
        "/agents/me/presence": {
            "put": _op(
                "Choose online (takes new tickets) or away (keeps current ones)",
                _OBJ,
                body=_json(
                    {"type": "object", "properties": {"status": {"enum": ["online", "away"]}}}
                ),
            )
        },
        "/routing/rules": {
            "get": _forbidden(_op("Rules in evaluation order", _OBJ), "supervisors and admins"),
            "post": _forbidden(
                _op("Add a rule (last)", _OBJ, body=RULE_BODY, status="201"), admins
            ),
        },
        "/routing/rules/order": {
            "put": _forbidden(
                _op(
                    "Reorder: every rule id, once, in the new order",
                    _OBJ,
                    body=_json({"type": "object", "properties": {"ids": {"type": "array"}}}),
                ),
                admins,
            )
        },
        "/routing/rules/{id}": {
            "get": _op("One rule", _OBJ, params=[_ID]),
            "put": _forbidden(
                _op("Replace it (a new version)", _OBJ, params=[_ID], body=RULE_BODY), admins
            ),
            "delete": _forbidden(_op("Retire it (versions kept)", _OBJ, params=[_ID]), admins),
        },
        "/routing/rules/{id}/versions": {
            "get": _op("Every saved state with who and when", _OBJ, params=[_ID])
        },
        "/tickets/{id}/claim": {
            "post": _conflict(
                _op("Take an unassigned ticket", _OBJ, params=[_ID]),
                "Already claimed by someone else (the message names them)",
            )
        },
    }
