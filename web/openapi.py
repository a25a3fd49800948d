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
            **_kb_paths(),
            **_bot_paths(),
            **_ticket_paths(),
            **_sla_paths(),
            **_routing_paths(),
            **_csat_paths(),
            **_admin_paths(),
            **_conversation_paths(),
            **_inbox_paths(),
            **_supervisor_paths(),
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
                    "Every inbox (supervisors and admins) with the URL its channel must call;"
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
                ),
                "patch": _op(
                    "Change a customer's tier, lifecycle_stage, tags (replaced as a whole) or"
                    " attributes (replaced as a whole); any other field is a 400; a record"
                    " merged away is a 409 merged_record",
                    {"type": "object", "properties": {"customer": customer}},
                    params=[_ID],
                    body={
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CustomerChanges"}
                        }
                    },
                ),
            },
            "/customers/{id}/notes": {
                "get": _op(
                    "Staff notes about the customer, newest first (never shown to customers)",
                    {
                        "type": "object",
                        "properties": {
                            "notes": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/CustomerNote"},
                            }
                        },
                    },
                    params=[_ID],
                ),
                "post": _op(
                    "Add a staff note (409 merged_record on a record merged away)",
                    {
                        "type": "object",
                        "properties": {"note": {"$ref": "#/components/schemas/CustomerNote"}},
                    },
                    params=[_ID],
                    body={
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["body"],
                                "properties": {"body": {"type": "string", "maxLength": 10000}},
                            }
                        }
                    },
                    status="201",
                ),
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
                **_KB_SCHEMAS,
                **_TICKET_SCHEMAS,
                **_csat_schemas(),
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
                        "tier": {"type": ["string", "null"]},
                        "lifecycle_stage": {
                            "enum": ["lead", "prospect", "customer", "churned", None]
                        },
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "attributes": {"type": "object"},
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
                "CustomerChanges": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "tier": {"type": ["string", "null"], "maxLength": 50},
                        "lifecycle_stage": {
                            "enum": ["lead", "prospect", "customer", "churned", None]
                        },
                        "tags": {
                            "type": "array",
                            "maxItems": 50,
                            "items": {"type": "string", "maxLength": 50},
                        },
                        "attributes": {
                            "type": "object",
                            "maxProperties": 50,
                            "additionalProperties": {
                                "type": ["string", "number", "integer", "boolean"]
                            },
                        },
                    },
                },
                "CustomerNote": {
                    "type": "object",
                    "properties": {
                        k: {} for k in ("id", "customer_id", "author_id", "body", "created_at")
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


_ARTICLE_FIELDS = ("key", "question", "phrasings", "answer_markdown", "locale", "category", "tags")
_KB_SCHEMAS: dict[str, Any] = {
    "Article": {
        "type": "object",
        "properties": {
            **{k: {} for k in ("id", "status", "version", "created_at", "updated_at")},
            **{k: {} for k in ("published_at", "answer_html", "score", *_ARTICLE_FIELDS)},
            "draft": {
                "type": ["object", "null"],
                "description": "A published article's pending draft (not live): its fields,"
                " answer_html, version, author_user_id and saved_at",
            },
        },
    },
    "ArticleVersion": {
        "type": "object",
        "properties": {
            k: {}
            for k in (
                "version",
                "status",
                "author_user_id",
                "change_note",
                "is_draft",
                "created_at",
                *_ARTICLE_FIELDS[1:],
            )
        },
    },
    "ArticleWrite": {
        "type": "object",
        "description": "Only these fields are read; ids, versions and authors are never"
        " taken from a body",
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_]{0,99}$"},
            "question": {"type": "string", "maxLength": 500},
            "phrasings": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "string", "maxLength": 500},
            },
            "answer_markdown": {"type": "string", "maxLength": 20000},
            "locale": {"type": "string", "examples": ["en", "zh-Hans", "zh-Hant"]},
            "category": {"type": "string", "maxLength": 100},
            "tags": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 50}},
            "change_note": {"type": "string", "maxLength": 500},
            "as_draft": {
                "type": "boolean",
                "description": "PATCH of a published article: save its pending draft only",
            },
        },
    },
}


def _readers_only(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["403"] = {
        "description": "Not a supervisor or admin",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return operation


def _admin_only(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["403"] = {
        "description": "Not an admin",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return operation


def _kb_paths() -> dict[str, Any]:
    one = {"type": "object", "properties": {"article": {"$ref": "#/components/schemas/Article"}}}
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ArticleWrite"}}}

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    return {
        "/kb/articles": {
            "get": _op(
                "Knowledge-base articles (agents and above); with q, best matches first"
                " (English words and prefixes, Chinese bigrams, traditional = simplified)",
                {
                    "type": "object",
                    "properties": {
                        "articles": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Article"},
                        }
                    },
                },
                params=[
                    query("status", {"type": "string", "enum": ["draft", "published"]}),
                    query("locale", {"type": "string"}),
                    query("q", {"type": "string", "maxLength": 200}),
                    query("limit", {"type": "integer", "minimum": 0, "maximum": 200}),
                    query("offset", {"type": "integer", "minimum": 0}),
                ],
            ),
            "post": _admin_only(
                _op("Create a draft article (admins)", one, body=body, status="201")
            ),
        },
        "/kb/articles/{id}": {
            "get": _op("An article with its answer rendered as safe HTML", one, params=[_ID]),
            "patch": _admin_only(
                _op(
                    "Edit an article: saved as a new version (admins)", one, params=[_ID], body=body
                )
            ),
        },
        "/kb/articles/{id}/versions": {
            "get": _op(
                "Every version of an article, oldest first, with its author and change note",
                {
                    "type": "object",
                    "properties": {
                        "versions": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/ArticleVersion"},
                        }
                    },
                },
                params=[_ID],
            )
        },
        "/kb/articles/{id}/publish": {
            "post": _admin_only(
                _op(
                    "Publish (a published article: its pending draft); the bot answers with it",
                    one,
                    params=[_ID],
                )
            )
        },
        "/kb/articles/{id}/unpublish": {
            "post": _admin_only(_op("Back to draft: the bot stops using it", one, params=[_ID]))
        },
        "/kb/articles/{id}/draft": {
            "delete": _admin_only(
                _op("Discard a published article's pending draft", one, params=[_ID])
            )
        },
    }


def _bot_paths() -> dict[str, Any]:
    bot = {"type": "object", "properties": {"bot": {"type": "object"}}}
    settings = {"type": "object", "properties": {"settings": {"type": "object"}}}
    fraction = {"type": "number", "minimum": 0, "maximum": 1}
    rule = {
        "type": "object",
        "required": ["field", "value"],
        "properties": {
            "field": {"type": "string", "enum": ["tier", "tag", "email", "email_domain"]},
            "value": {"type": "string", "maxLength": 320},
            "reason": {"type": "string", "maxLength": 200},
        },
    }
    settings_body = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "bot_enabled": {"type": "boolean"},
                    "confidence": fraction,
                    "margin": fraction,
                    "clarify_gap": fraction,
                    "rules": {"type": "array", "items": rule, "maxItems": 50},
                },
            }
        }
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
    }
    hand_back = _op(
        "Hand the conversation back to the bot: it answers the customer's next message",
        bot,
        params=[_ID],
    )
    hand_back["responses"]["409"] = {
        "description": "The bot already has it, or the inbox's bot is off",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return {
        "/conversations/{id}/bot": {
            "get": _op(
                "The bot in this conversation: mode (bot/human), hand-off reason, detail and"
                " best guesses with confidence, and per bot message the decision, article id,"
                " version and confidence",
                bot,
                params=[_ID],
            )
        },
        "/conversations/{id}/bot/hand-back": {"post": hand_back},
        "/inboxes/{id}/bot": {
            "get": _readers_only(
                _op("An inbox's bot switch, thresholds and hand-off rules", settings, params=[_ID])
            ),
            "patch": _admin_only(
                _op(
                    "Change the bot switch, thresholds or rules; fields left out keep their"
                    " value (admins)",
                    settings,
                    params=[_ID],
                    body=settings_body,
                )
            ),
        },
        "/bot/missed": {
            "get": _admin_only(
                _op(
                    "Missed questions: customer messages that ended out of scope, unsure, in a"
                    " clarify or a hand-off for a miss, with the bot's guesses (admins)",
                    {"type": "object", "properties": {"missed": {"type": "array"}}},
                    params=[limit],
                )
            )
        },
        "/bot/missed/{id}/dismiss": {
            "post": _admin_only(
                _op("Dismiss a missed question (admins)", {"type": "object"}, params=[_ID])
            )
        },
    }


_TICKET_FIELDS = (
    "id",
    "customer_id",
    "subject",
    "status",
    "priority",
    "source",
    "reason",
    "assignee_id",
    "queue_id",
    "tags",
    "conversation_ids",
    "merged_into_id",
    "allowed_statuses",
    "created_at",
    "updated_at",
    "solved_at",
    "closed_at",
    "first_response_due_at",
    "resolution_due_at",
    "sla_policy_id",
    # The latest SLA clock per metric: status, due_at, seconds_to_breach, paused, …
    "sla",
    # The CSAT survey (CsatSurvey without its comment, which only the CSAT report shows)
    # or null if none was sent.
    "csat",
)
_STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]
_PRIORITIES = ["low", "normal", "high", "urgent"]
_TAGS = {
    "type": "array",
    "maxItems": 20,
    "items": {"type": "string", "pattern": "^[\\w\\-.:/]{1,50}$"},
}
_TICKET_SCHEMAS: dict[str, Any] = {
    "Ticket": {"type": "object", "properties": {k: {} for k in _TICKET_FIELDS}},
    "TicketCreate": {
        "type": "object",
        "description": "Either conversation_id (its open ticket comes back, 200, if it has"
        " one) or customer_id (a ticket without a conversation)",
        "properties": {
            "conversation_id": {"type": "integer"},
            "customer_id": {"type": "integer"},
            "subject": {"type": ["string", "null"], "maxLength": 500},
            "priority": {"enum": _PRIORITIES},
            "tags": _TAGS,
        },
    },
    "TicketUpdate": {
        "type": "object",
        "description": "Only these fields are read; any other field is ignored, never"
        " applied. A status change the lifecycle forbids is a 409 naming both statuses.",
        "properties": {
            "status": {"enum": _STATUSES},
            "priority": {"enum": _PRIORITIES},
            "tags": _TAGS,
            "subject": {"type": ["string", "null"], "maxLength": 500},
            "assignee_id": {"type": ["integer", "null"]},
        },
    },
    "TicketNote": {
        "type": "object",
        "properties": {k: {} for k in ("id", "ticket_id", "author_id", "body", "created_at")},
    },
    "TicketActivity": {
        "type": "object",
        "properties": {
            k: {}
            for k in (
                "id",
                "ticket_id",
                "kind",
                "actor",
                "actor_user_id",
                "data",
                "created_at",
                "merged_from_ticket_id",
            )
        },
    },
}


def _conflict(operation: dict[str, Any], description: str) -> dict[str, Any]:
    operation["responses"]["409"] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }
    return operation


def _supervisor_paths() -> dict[str, Any]:
    from web.supervisor_openapi import supervisor_paths  # it imports this module's helpers

    return supervisor_paths()


def _routing_paths() -> dict[str, Any]:
    from web.routing_openapi import routing_paths  # it imports this module's helpers

    return routing_paths()


def _conversation_paths() -> dict[str, Any]:
    from web.conversation_openapi import conversation_paths  # it imports this module's helpers

    return conversation_paths()


def _inbox_paths() -> dict[str, Any]:
    from web.inbox_openapi import inbox_paths  # it imports this module's helpers

    return inbox_paths()


def _csat_paths() -> dict[str, Any]:
    from web.csat import openapi_paths  # it imports this module's helpers

    return openapi_paths()


def _csat_schemas() -> dict[str, Any]:
    from web.csat import CSAT_SCHEMAS

    return CSAT_SCHEMAS


def _admin_paths() -> dict[str, Any]:
    from web.admin_api import openapi_paths  # it imports this module's helpers

    return openapi_paths()


def _sla_paths() -> dict[str, Any]:
    from web.sla_api import openapi_paths  # it imports this module's helpers

    return openapi_paths()


def _ticket_paths() -> dict[str, Any]:
    one = {"type": "object", "properties": {"ticket": {"$ref": "#/components/schemas/Ticket"}}}

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, "description": description}

    def body(schema: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}

    return {
        "/tickets": {
            "get": _op(
                "Tickets the caller may see, newest (or oldest) first, a page at a time;"
                " an unknown filter is a 400",
                {
                    "type": "object",
                    "properties": {
                        "tickets": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Ticket"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                params=[
                    query("status", {"type": "string"}, "comma-separated: " + ", ".join(_STATUSES)),
                    query("priority", {"type": "string"}, "comma-separated priorities"),
                    query("assignee_id", {"type": "string"}, "a user id, me, or none"),
                    query("tag", {"type": "string"}, "one tag"),
                    query("customer_id", {"type": "integer"}, "one customer"),
                    query("conversation_id", {"type": "integer"}, "tickets covering it"),
                    query("order", {"enum": ["newest", "oldest"]}, "by ticket id"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page"),
                    query("cursor", {"type": "string"}, "next_cursor of the page before"),
                ],
            ),
            "post": _op(
                "Open a ticket for a conversation or a customer",
                one,
                body=body("TicketCreate"),
                status="201",
            ),
        },
        "/tickets/{id}": {
            "get": _op("One ticket", one, params=[_ID]),
            "patch": _conflict(
                _op(
                    "Change status, priority, tags, subject or assignee; each change goes"
                    " into the timeline with the caller as actor",
                    one,
                    params=[_ID],
                    body=body("TicketUpdate"),
                ),
                "The lifecycle forbids this status change, the ticket is closed, or an"
                " agent takes a ticket someone else has (the message names them). An agent"
                " giving a ticket to someone else, or unassigning another's, is a 403",
            ),
        },
        "/tickets/{id}/notes": {
            "get": _op(
                "Internal notes, oldest first",
                {"type": "object", "properties": {"notes": {"type": "array"}}},
                params=[_ID],
            ),
            "post": _op(
                "Add an internal note (never sent to the customer)",
                {
                    "type": "object",
                    "properties": {"note": {"$ref": "#/components/schemas/TicketNote"}},
                },
                params=[_ID],
                body={
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["body"],
                            "properties": {"body": {"type": "string", "maxLength": 10000}},
                        }
                    }
                },
                status="201",
            ),
        },
        "/tickets/{id}/merge": {
            "post": _conflict(
                _op(
                    "Merge the ticket other_id into this one: its conversations, notes, tags"
                    " and timeline move here; it points here and is closed",
                    one,
                    params=[_ID],
                    body={"application/json": {"schema": {"$ref": "#/components/schemas/Merge"}}},
                ),
                "Either ticket is closed or merged, they belong to different customers,"
                " or an agent merges tickets of different queues",
            )
        },
        "/tickets/{id}/timeline": {
            "get": _op(
                "Every change with its actor and time, oldest first (entries merged in included)",
                {
                    "type": "object",
                    "properties": {
                        "timeline": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TicketActivity"},
                        }
                    },
                },
                params=[_ID, query("after_id", {"type": "integer"}, "entries after this id")],
            )
        },
    }
