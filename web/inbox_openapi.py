"""OpenAPI paths for the inbox's list side (`web.inbox_api`): the list by view and
filters, per-view counts, saved views, and search."""

from __future__ import annotations

from typing import Any

from web.openapi import _ID, _op

_CSV = {"type": "string", "description": "one or more values, separated by commas"}
_FILTERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "view": {"type": "string", "enum": ["mine", "unassigned", "my_queues", "all"]},
        "status": {
            "type": "array",
            "items": {
                "type": "string",
                "enum": ["new", "open", "pending", "on_hold", "solved", "closed"],
            },
        },
        "priority": {
            "type": "array",
            "items": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
        },
        "channel": {
            "type": "array",
            "items": {"type": "string", "enum": ["webchat", "email", "telegram", "slack"]},
        },
        "tag": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 10},
    },
    "additionalProperties": False,
}
_VIEW = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": 100},
        "filters": _FILTERS,
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_VIEW_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 100}, "filters": _FILTERS},
            "additionalProperties": False,
        }
    }
}
_PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array"},
        "next_cursor": {},
        # The scan stopped at 20,000 rows before the page filled: older matches may
        # exist (next_cursor scans on); a client may suggest refining the search.
        "truncated": {"type": "boolean"},
    },
}


def _q(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _conflict(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["409"] = {
        "description": "You already have a view with that name",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return operation


def inbox_paths() -> dict[str, Any]:
    item = {
        "allOf": [
            {"$ref": "#/components/schemas/Conversation"},
            {
                "type": "object",
                "properties": {
                    "customer_name": {"type": ["string", "null"]},
                    "ticket": {"type": ["object", "null"]},
                    "unread_count": {
                        "type": "integer",
                        "description": "customer messages the caller has not read",
                    },
                },
            },
        ]
    }
    filters = [
        _q("view", _FILTERS["properties"]["view"]),
        _q("status", _CSV),
        _q("priority", _CSV),
        _q("channel", _CSV),
        _q("tag", _CSV),
        _q("saved", {"type": "integer", "description": "a saved view of the caller's"}),
        _q("ids", {**_CSV, "description": "only these conversations, if in the view (≤ 50)"}),
        _q("cursor", {"type": "string"}),
        _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
    ]
    return {
        "/inbox/conversations": {
            "get": _op(
                "The inbox list: one view narrowed by filters, newest activity first",
                {
                    "type": "object",
                    "properties": {
                        "conversations": {"type": "array", "items": item},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                params=filters,
            )
        },
        "/inbox/counts": {
            "get": _op(
                "Per built-in and saved view (`saved:<id>`): total and unread, capped",
                {
                    "type": "object",
                    "properties": {"counts": {"type": "object"}, "cap": {"type": "integer"}},
                },
            )
        },
        "/inbox/views": {
            "get": _op(
                "The caller's saved views",
                {"type": "object", "properties": {"views": {"type": "array", "items": _VIEW}}},
            ),
            "post": _conflict(
                _op(
                    "Save a view (name and filters)",
                    {"type": "object", "properties": {"view": _VIEW}},
                    body=_VIEW_BODY,
                    status="201",
                )
            ),
        },
        "/inbox/views/{id}": {
            "patch": _conflict(
                _op(
                    "Rename a saved view or change its filters",
                    {"type": "object", "properties": {"view": _VIEW}},
                    params=[_ID],
                    body=_VIEW_BODY,
                )
            ),
            "delete": _op("Delete a saved view", {"type": "null"}, params=[_ID], status="204"),
        },
        "/search": {
            "get": _op(
                "Search messages, customers and tickets the caller may see (English and"
                " Chinese), grouped by kind, each newest first with its own cursor",
                {
                    "type": "object",
                    "properties": {
                        "q": {"type": "string"},
                        "results": {
                            "type": "object",
                            "properties": {"messages": _PAGE, "customers": _PAGE, "tickets": _PAGE},
                        },
                    },
                },
                params=[
                    _q("q", {"type": "string", "maxLength": 200}, required=True),
                    _q("kind", {"type": "string", "enum": ["messages", "customers", "tickets"]}),
                    _q("cursor", {"type": "string", "description": "needs kind"}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
            )
        },
    }
