"""CSAT over HTTP: the public rating page behind a signed link, the admins' per-inbox
switch and the supervisors' report.

The page needs no login: the HMAC link (`tickets.csat_links`) names one survey and
expires with it. A forged, malformed or expired link gets a page saying so and stores
nothing; so does an answer after the survey's window. Everything shown is escaped by
the template engine (autoescape on).
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Inbox
from switchboard.appkeys import DB, SETTINGS
from switchboard.audit import record
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.models import User
from tickets.access import ticket_id_from
from tickets.csat import (
    BUTTONS,
    EN,
    INBOX_SWITCH,
    ZH_HANS,
    ZH_HANT,
    check_answer,
    do_rate_by_link,
    get_survey,
    inbox_enabled,
)
from tickets.csat_links import LinkRefused, RatingLinks
from tickets.csat_report import check_query, list_ratings, summary
from web.access import access_admin, access_reader
from web.bodies import read_json_object
from web.clientip import client_address

_PAGE = {
    EN: {
        "title": "Rate our help",
        "ask": "How did we do? 1 is poor, 5 is excellent.",
        "ask_short": "Your rating",
        "comment": "Anything to add? (optional)",
        "send": "Send",
        "thanks": "Thank you for your rating!",
        "invalid": "This rating link is not valid.",
        "expired": "This rating link has expired.",
        "closed": "This rating can no longer be changed.",
        "choose": "Please choose a rating from 1 to 5.",
    },
    ZH_HANS: {
        "title": "为我们的服务评分",
        "ask": "我们的服务怎么样？1 为很差，5 为很好。",
        "ask_short": "您的评分",
        "comment": "还有什么想说的吗？（可选）",
        "send": "提交",
        "thanks": "感谢您的评分！",
        "invalid": "此评分链接无效。",
        "expired": "此评分链接已过期。",
        "closed": "此评分已无法更改。",
        "choose": "请选择 1 到 5 的评分。",
    },
    ZH_HANT: {
        "title": "為我們的服務評分",
        "ask": "我們的服務怎麼樣？1 為很差，5 為很好。",
        "ask_short": "您的評分",
        "comment": "還有什麼想說的嗎？（可選）",
        "send": "送出",
        "thanks": "感謝您的評分！",
        "invalid": "此評分連結無效。",
        "expired": "此評分連結已過期。",
        "closed": "此評分已無法更改。",
        "choose": "請選擇 1 到 5 的評分。",
    },
}


def _links(request: web.Request) -> RatingLinks:
    settings = request.config_dict[SETTINGS]
    return RatingLinks(settings.secret_key, settings.public_url)


def _page(
    request: web.Request, locale: str, state: str, status: int = 200, **context: Any
) -> web.Response:
    t = _PAGE.get(locale, _PAGE[EN])
    response = aiohttp_jinja2.render_template(
        "csat_page.html",
        request,
        {"t": t, "state": state, "lang": locale, "labels": BUTTONS.get(locale, BUTTONS[EN])}
        | context,
        status=status,
    )
    # The token is in the URL: no caching, no referrer leaking it to other sites.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _refused(request: web.Request, reason: str, status: int, locale: str = EN) -> web.Response:
    return _page(request, locale, "refused", status, message=_PAGE[locale][reason])


async def _survey_for(request: web.Request) -> tuple[int, str, int | None] | web.Response:
    """(survey id, locale, current rating) for a good link; the refusal page otherwise."""
    try:
        survey_id = _links(request).check(request.match_info["token"], utcnow())
    except LinkRefused as refused:
        if refused.expired:
            return _refused(request, "expired", 410)
        return _refused(request, "invalid", 404)
    async with request.config_dict[DB].reading() as session:
        try:
            survey = await get_survey(session, survey_id)
        except NotFound:
            return _refused(request, "invalid", 404)
        if utcnow() >= survey.expires_at:
            return _refused(request, "closed", 410, survey.locale)
        return survey.id, survey.locale, survey.rating


async def rating_page(request: web.Request) -> web.Response:
    found = await _survey_for(request)
    if isinstance(found, web.Response):
        return found
    _, locale, current = found
    return _page(
        request,
        locale,
        "form",
        token=request.match_info["token"],
        current=current,
    )


async def rate(request: web.Request) -> web.Response:
    found = await _survey_for(request)
    if isinstance(found, web.Response):
        return found
    survey_id, locale, current = found
    form = await request.post()
    try:
        rating, comment = check_answer(form.get("rating"), form.get("comment"))
    except InvalidInput:
        return _page(
            request,
            locale,
            "form",
            400,
            token=request.match_info["token"],
            current=current,
            error=_PAGE[locale]["choose"],
        )
    now = utcnow()
    try:
        await request.config_dict[DB].run(
            lambda s: do_rate_by_link(s, survey_id, rating, comment, now)
        )
    except Conflict:
        return _refused(request, "closed", 410, locale)
    return _page(request, locale, "thanks")


# --- API -------------------------------------------------------------------------------


def _reader(request: web.Request, what: str = "CSAT ratings") -> User:
    return access_reader(request, what)


def _admin(request: web.Request) -> User:
    return access_admin(request, "CSAT settings")


async def ratings(request: web.Request) -> web.Response:
    _reader(request)
    filters, cursor, limit = check_query(request.query)
    async with request.config_dict[DB].reading() as session:
        page, next_cursor = await list_ratings(session, filters, cursor, limit)
        totals = await summary(session, filters)
    return web.json_response(
        {
            "ratings": page,
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
            "summary": totals,
        }
    )


def _inbox_id(request: web.Request) -> int:
    found = ticket_id_from(request.match_info["id"])
    if found is None:
        raise NotFound("inbox not found")
    return found


async def inbox_setting(request: web.Request) -> web.Response:
    _reader(request, "CSAT settings")
    inbox_id = _inbox_id(request)
    async with request.config_dict[DB].reading() as session:
        inbox = await session.get(Inbox, inbox_id)
        if inbox is None:
            raise NotFound("inbox not found")
        return web.json_response({"inbox_id": inbox.id, "enabled": inbox_enabled(inbox)})


async def change_inbox_setting(request: web.Request) -> web.Response:
    user = _admin(request)
    inbox_id = _inbox_id(request)
    body = await read_json_object(request)
    if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise InvalidInput('the body must be {"enabled": true|false}', code="invalid_body")
    enabled: bool = body["enabled"]

    async def write(session: AsyncSession) -> bool:
        inbox = await session.get(Inbox, inbox_id, with_for_update=True)
        if inbox is None:
            raise NotFound("inbox not found")
        # A new dict: the JSON column notices reassignment, not changes in place.
        inbox.config = {**(inbox.config or {}), INBOX_SWITCH: enabled}
        inbox.updated_at = utcnow()
        await record(
            session, "csat.settings_changed", actor=user, address=client_address(request),
            target_type="inbox", target_id=inbox_id, target_label=inbox.name,
            details={"enabled": enabled},
        )  # fmt: skip
        return enabled

    stored = await request.config_dict[DB].run(write)
    return web.json_response({"inbox_id": inbox_id, "enabled": stored})


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/csat/{token}", rating_page)
    # The link authorises the post, not a session: exempt from the session CSRF check
    # by this name (`web.auth.CSRF_EXEMPT_ROUTES`), so the form carries no CSRF token.
    app.router.add_post("/csat/{token}", rate, name="csat-rate")


def setup_api(app: web.Application) -> None:
    app.router.add_get("/csat", ratings)
    app.router.add_get("/inboxes/{id}/csat", inbox_setting)
    app.router.add_put("/inboxes/{id}/csat", change_inbox_setting)


def openapi_paths() -> dict[str, Any]:
    """The API routes above for the OpenAPI document (web/openapi.py)."""
    from web.openapi import _ID, _admin_only, _op, _readers_only

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, "description": description}

    survey = {"$ref": "#/components/schemas/CsatSurvey"}
    setting = {
        "type": "object",
        "properties": {"inbox_id": {"type": "integer"}, "enabled": {"type": "boolean"}},
    }
    listing = _op(
        "CSAT ratings (answered surveys), newest survey first, with their aggregate over"
        " the same filters; supervisors and admins only (agents 403)",
        {
            "type": "object",
            "properties": {
                "ratings": {"type": "array", "items": survey},
                "next_cursor": {"type": ["string", "null"]},
                "summary": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer"},
                        "average": {"type": ["number", "null"]},
                        "satisfied_percent": {
                            "type": ["number", "null"],
                            "description": "share of ratings 4 and 5, in percent",
                        },
                    },
                },
            },
        },
        params=[
            query("from", {"type": "string", "format": "date-time"}, "rated at or after"),
            query("to", {"type": "string", "format": "date-time"}, "rated before"),
            query("agent_id", {"type": "integer"}, "the agent who solved the ticket"),
            query("inbox_id", {"type": "integer"}, "the inbox of the rated conversation"),
            query("ticket_id", {"type": "integer"}, "one ticket (its comment is only here)"),
            query("cursor", {"type": "string"}, "next_cursor of the previous page"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "default 50"),
        ],
    )
    listing["responses"]["403"] = {"description": "Not a supervisor or admin"}
    return {
        "/csat": {"get": listing},
        "/inboxes/{id}/csat": {
            "parameters": [_ID],
            "get": _readers_only(_op("Whether the inbox sends CSAT requests", setting)),
            "put": _admin_only(
                _op(
                    "Switch CSAT requests on or off for the inbox",
                    setting,
                    body={
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["enabled"],
                                "properties": {"enabled": {"type": "boolean"}},
                                "additionalProperties": False,
                            }
                        }
                    },
                )
            ),
        },
    }


CSAT_SCHEMAS: dict[str, Any] = {
    "CsatSurvey": {
        "type": "object",
        "description": "A ticket's rating request and its answer (one per ticket)",
        "properties": {
            k: {}
            for k in (
                "id",
                "ticket_id",
                "conversation_id",
                "inbox_id",
                "customer_id",
                "agent_id",
                "locale",
                "skipped",
                "requested_at",
                "expires_at",
                "rating",
                "comment",
                "answered_via",
                "rated_at",
                "commented_at",
            )
        },
    }
}
