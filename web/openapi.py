"""The OpenAPI 3.1 document for /api/v1, kept beside the routes it describes."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    status: str = "200",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}, {"session": []}],
        "responses": {
            status: {"description": "OK", "content": {"application/json": {"schema": ok}}},
            "400": {
                "description": "Bad input",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "401": {
                "description": "Not logged in",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "404": {
                "description": "Not found (or not yours)",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def document(server_url: str) -> dict[str, Any]:
    message = {"$ref": "#/components/schemas/Message"}
    conversation = {"$ref": "#/components/schemas/Conversation"}
    customer = {"$ref": "#/components/schemas/Customer"}
    customer_merge = {"$ref": "#/components/schemas/CustomerMerge"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard API", "version": "1"},
        "servers": [{"url": server_url.rstrip("/") + "/api/v1"}],
        "paths": {
            "/me": {"get": _op("The calling user", {"type": "object"})},
            "/conversations": {
                "get": _op(
                    "Conversations the caller may see, most recent first",
                    {
                        "type": "object",
                        "properties": {"conversations": {"type": "array", "items": conversation}},
                    },
                    params=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        }
                    ],
                )
            },
            "/conversations/{id}": {
                "get": _op(
                    "One conversation",
                    {"type": "object", "properties": {"conversation": conversation}},
                    params=[_ID],
                )
            },
            "/conversations/{id}/messages": {
                "get": _op(
                    "Messages after a sequence number, oldest first",
                    {
                        "type": "object",
                        "properties": {"messages": {"type": "array", "items": message}},
                    },
                    params=[
                        _ID,
                        {
                            "name": "after_seq",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                ),
                "post": _op(
                    "Reply (or add an internal note); the reply is queued for delivery",
                    {"type": "object", "properties": {"message": message}},
                    params=[_ID],
                    body={"application/json": {"schema": {"$ref": "#/components/schemas/Reply"}}},
                    status="201",
                ),
            },
            "/conversations/{id}/read": {
                "post": _op("Mark read", {"type": "object"}, params=[_ID])
            },
            "/uploads": {
                "post": _op(
                    "Upload a file to attach to a reply",
                    {"type": "object"},
                    params=[
                        {
                            "name": "inbox_id",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    body={
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                    status="201",
                )
            },
            "/inboxes": {
                "get": _op(
                    "Every inbox (admins only) with the URL its channel must call;"
                    " credentials are never shown",
                    {
                        "type": "object",
                        "properties": {"inboxes": {"type": "array", "items": {"type": "object"}}},
                    },
                )
            },
            "/customers/{id}": {
                "get": _op(
                    "A customer: profile, identities on each channel, conversations, merges;"
                    " a record merged away names the one it went to in merged_into",
                    {"type": "object", "properties": {"customer": customer}},
                    params=[_ID],
                )
            },
            "/customers/{id}/suggestions": {
                "get": _op(
                    "Other records that may be the same person (same unverified email,"
                    " phone or name); never merged without an agent",
                    {
                        "type": "object",
                        "properties": {
                            "suggestions": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/MergeSuggestion"},
                            }
                        },
                    },
                    params=[_ID],
                )
            },
            "/customers/{id}/merge": {
                "post": _op(
                    "Merge the customer other_id into this one (409 if either was merged)",
                    {"type": "object", "properties": {"merge": customer_merge}},
                    params=[_ID],
                    body={"application/json": {"schema": {"$ref": "#/components/schemas/Merge"}}},
                    status="201",
                )
            },
            "/customer-merges/{id}/undo": {
                "post": _op(
                    "Undo a merge: what it moved goes back (409 if already undone)",
                    {"type": "object", "properties": {"merge": customer_merge}},
                    params=[_ID],
                )
            },
            "/attachments/{id}": {
                "get": _op(
                    "Download an attachment",
                    {"type": "string"},
                    params=[
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                )
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "switchboard create-token",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "sb_session"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Reply": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "maxLength": 10000},
                        "private": {"type": "boolean"},
                        "attachments": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Merge": {
                    "type": "object",
                    "required": ["other_id"],
                    "properties": {"other_id": {"type": "integer"}},
                },
                "Customer": {
                    "type": "object",
                    "properties": {
                        **{
                            k: {}
                            for k in (
                                "id",
                                "name",
                                "email",
                                "verified_email",
                                "phone",
                                "created_at",
                                "merged_into",
                                "conversations",
                                "merges",
                            )
                        },
                        "identities": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    k: {}
                                    for k in (
                                        "id",
                                        "inbox_id",
                                        "channel",
                                        "external_id",
                                        "display_name",
                                        "verified",
                                        "reachable",
                                    )
                                },
                            },
                        },
                    },
                },
                "MergeSuggestion": {
                    "type": "object",
                    "properties": {
                        "customer": {"type": "object"},
                        "reasons": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": ["same_email", "same_phone", "same_name"],
                            },
                        },
                    },
                },
                "CustomerMerge": {
                    "type": "object",
                    "properties": {
                        k: {}
                        for k in (
                            "id",
                            "survivor_id",
                            "merged_id",
                            "moved",
                            "actor_user_id",
                            "created_at",
                            "undone_at",
                        )
                    },
                },
                "Conversation": {
                    "type": "object",
                    "properties": {
                        k: {}
                        for k in (
                            "id",
                            "inbox_id",
                            "customer_id",
                            "channel",
                            "status",
                            "subject",
                            "last_seq",
                            "last_message_at",
                            "last_preview",
                            "unread_count",
                        )
                    },
                },
                "Message": {
                    "type": "object",
                    "properties": {
                        k: {}
                        for k in (
                            "id",
                            "conversation_id",
                            "seq",
                            "direction",
                            "author_kind",
                            "author_user_id",
                            "text",
                            "private",
                            "delivery_status",
                            "delivery_error",
                            "created_at",
                            "attachments",
                        )
                    },
                },
            },
        },
    }
