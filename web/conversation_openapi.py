"""OpenAPI paths for working a conversation (`web.conversation_api`) and canned replies
(`web.canned_api`)."""

from __future__ import annotations

from typing import Any

from web.openapi import _ID, _op

_OBJ: dict[str, Any] = {"type": "object"}
_CANNED = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "shortcut": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,49}$"},
        "title": {"type": "string", "maxLength": 200},
        "body": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_CANNED_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "shortcut": _CANNED["properties"]["shortcut"],  # type: ignore[index]
                "title": {"type": "string"},
                "body": {"type": "string"},
            },
            "additionalProperties": False,
        }
    }
}


def _q(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _wrap(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: schema}}


def conversation_paths() -> dict[str, Any]:
    message_list = {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}
    return {
        "/conversations/{id}/history": {
            "get": _op(
                "The customer's messages on every channel the caller may see, oldest first;"
                " each with `channel`, `author_name` and, for a bot message, `bot` (article,"
                " confidence). `next_cursor` pages to older messages.",
                {
                    "type": "object",
                    "properties": {
                        "customer_id": {"type": "integer"},
                        "messages": message_list,
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                params=[
                    _ID,
                    _q("before", {"type": "string"}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 300}),
                ],
            )
        },
        "/conversations/{id}/assist": {
            "get": _op(
                "Published knowledge-base answers for the customer's latest message",
                {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string"},
                        "suggestions": {"type": "array", "items": _OBJ},
                    },
                },
                params=[_ID],
            )
        },
        "/conversations/{id}/notes": {
            "post": _op(
                "Add an internal note (never sent to the customer); `mentions` names"
                " teammates who may see the conversation, each notified live",
                {
                    "type": "object",
                    "properties": {
                        "message": {"$ref": "#/components/schemas/Message"},
                        "mentioned_user_ids": {"type": "array", "items": {"type": "integer"}},
                    },
                },
                params=[_ID],
                body={
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "text": {"type": "string"},
                                "mentions": {
                                    "type": "array",
                                    "items": {"type": "integer"},
                                    "maxItems": 20,
                                },
                                "attachments": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
                status="201",
            )
        },
        "/mentions": {
            "get": _op(
                "The caller's mentions, newest first",
                _wrap("mentions", {"type": "array", "items": _OBJ}),
                params=[
                    _q("unread", {"type": "string", "enum": ["1", "true"]}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                ],
            )
        },
        "/mentions/read": {
            "post": _op(
                "Mark the caller's mentions read (of one conversation, or all)",
                _wrap("marked", {"type": "integer"}),
                body={
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"conversation_id": {"type": "integer"}},
                        }
                    }
                },
            )
        },
        "/teammates": {
            "get": _op(
                "Active staff: id, name, role (for mentions and the assignee picker)",
                _wrap("teammates", {"type": "array", "items": _OBJ}),
            )
        },
        "/canned-replies": {
            "get": _op(
                "Every canned reply (staff)",
                _wrap("canned_replies", {"type": "array", "items": _CANNED}),
            ),
            "post": _op(
                "Create a canned reply (admins); 409 for a shortcut in use",
                _wrap("canned_reply", _CANNED),
                body=_CANNED_BODY,
                status="201",
            ),
        },
        "/canned-replies/{id}": {
            "get": _op("One canned reply (staff)", _wrap("canned_reply", _CANNED), params=[_ID]),
            "patch": _op(
                "Change a canned reply (admins)",
                _wrap("canned_reply", _CANNED),
                params=[_ID],
                body=_CANNED_BODY,
            ),
            "delete": _op("Delete a canned reply (admins)", _OBJ, params=[_ID], status="204"),
        },
        "/canned-replies/{id}/render": {
            "get": _op(
                "The reply's text with {{customer.name}}-style placeholders filled for a"
                " conversation's customer; unknown placeholders are left as written",
                {
                    "type": "object",
                    "properties": {"text": {"type": "string"}, "canned_reply": _CANNED},
                },
                params=[_ID, _q("conversation_id", {"type": "integer"}, required=True)],
            )
        },
    }
