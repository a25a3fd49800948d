"""The supervisor dashboard's and reports' part of the OpenAPI document (`web.openapi`
merges it in). Every route is for supervisors and admins (403 for agents)."""

from __future__ import annotations

from typing import Any

from web.openapi import _ERROR, _ID, _conflict, _op

_OBJ = {"type": "object"}


def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


def _readers(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["403"] = {
        "description": "Only supervisors and admins",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return operation


def _csv(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["200"] = {
        "description": "CSV, UTF-8 with a BOM, a header row; text cells starting with "
        "= + - @ TAB or CR are prefixed with '",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    return operation


PERIOD = [
    _q("period", {"enum": ["today", "7d", "30d", "custom"]}, "default 7d"),
    _q("from", {"type": "string", "format": "date"}, "first day of a custom period"),
    _q("to", {"type": "string", "format": "date"}, "last day (included), at most 92 days"),
    _q("tz", {"type": "string"}, "IANA time zone of the days; default the caller's"),
    _q("queue_id", {"type": "string"}, "a queue id, or none (tickets in no queue)"),
]
TICKET_FILTERS = [
    *PERIOD,
    _q("state", {"enum": ["waiting", "open", "breached"]}),
    _q("assignee_id", {"type": "integer"}, "an agent's active tickets"),
    _q(
        "report",
        {
            "enum": [
                "first_response",
                "resolution",
                "sla",
                "csat",
                "containment",
                "handoff_reasons",
            ]
        },
        "the tickets behind a report's number (with the period)",
    ),
    _q("bucket", {"type": "integer"}, "one bucket of the period (0 = first)"),
    _q("part", {"type": "string"}, "unanswered, hit, missed, 1-5, handed_off"),
    _q("reason", {"type": "string"}, "a hand-off reason"),
    _q("metric", {"enum": ["first_response", "next_response", "resolution"]}),
]
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_TICKETS = {
    "type": "object",
    "properties": {
        "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}},
        "next_cursor": {"type": ["string", "null"]},
    },
}


def supervisor_paths() -> dict[str, Any]:
    return {
        "/supervisor/overview": {
            "get": _readers(
                _op("Queues (waiting, open, breached, soonest due) and agents now", _OBJ)
            )
        },
        "/supervisor/tickets": {
            "get": _readers(
                _op(
                    "The tickets behind a dashboard number, newest first",
                    _TICKETS,
                    params=[*TICKET_FILTERS, _q("cursor", {"type": "string"}), _q("limit", {})],
                )
            )
        },
        "/supervisor/tickets.csv": {
            "get": _readers(_csv(_op("The same tickets as CSV", _OBJ, params=TICKET_FILTERS)))
        },
        "/supervisor/tickets/{id}/assign": {
            "post": _readers(
                _conflict(
                    _op(
                        "Reassign a ticket (assignee_id null: back to the queue)",
                        _OBJ,
                        params=[_ID],
                        body={
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["assignee_id"],
                                    "properties": {
                                        "assignee_id": {"type": ["integer", "null"]},
                                        "over_capacity": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    ),
                    "over_capacity: the agent is full (send over_capacity: true to assign anyway)",
                )
            )
        },
        "/reports/{name}": {
            "get": _readers(
                _op(
                    "A report (first_response, resolution, sla, csat, containment, "
                    "handoff_reasons) over a period, per local day (or hour for today)",
                    _OBJ,
                    params=[_NAME, *PERIOD],
                )
            )
        },
        "/reports/{name}.csv": {
            "get": _readers(_csv(_op("A report as CSV", _OBJ, params=[_NAME, *PERIOD])))
        },
    }
