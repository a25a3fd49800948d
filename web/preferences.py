"""Each user's own interface settings: language and time zone.

A page (`/preferences`, a plain form, works without scripts) and the API
(`PATCH /api/v1/me`). Only these two fields can be changed here: a body naming anything
else (role, email, active) is refused, so nobody changes their own role through it.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.appkeys import DB
from switchboard.errors import InvalidInput
from switchboard.models import User
from web.auth import csrf_token, current_user, require_user
from web.bodies import read_json_object
from web.i18n import LOCALE_NAMES, SUPPORTED_LOCALES

EDITABLE = frozenset({"locale", "timezone"})


@cache
def time_zones() -> tuple[str, ...]:
    """IANA zone names a user may pick ("UTC" first, then alphabetical)."""
    names = {z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")}
    return ("UTC", *sorted(names))


def check_preferences(data: dict[str, Any]) -> dict[str, str]:
    """The changes in `data`, validated; `InvalidInput` naming the bad field."""
    unknown = sorted(set(data) - EDITABLE)
    if unknown:
        raise InvalidInput(f"only locale and timezone can be changed here, not {unknown[0]}")
    changes: dict[str, str] = {}
    if "locale" in data:
        if data["locale"] not in SUPPORTED_LOCALES:
            raise InvalidInput(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}")
        changes["locale"] = data["locale"]
    if "timezone" in data:
        if not isinstance(data["timezone"], str) or data["timezone"] not in time_zones():
            raise InvalidInput("timezone must be an IANA time zone name, such as Asia/Shanghai")
        changes["timezone"] = data["timezone"]
    return changes


async def do_set_preferences(session: AsyncSession, user_id: int, changes: dict[str, str]) -> None:
    if changes:
        await session.execute(update(User).where(User.id == user_id).values(**changes))


def preferences_view(user: User) -> dict[str, str]:
    return {"locale": user.locale or "en", "timezone": user.timezone or "UTC"}


async def preferences_page(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=/preferences")
    return aiohttp_jinja2.render_template(
        "preferences.html",
        request,
        {
            "user": user,
            "csrf_token": csrf_token(request),
            "active": "preferences",
            "locales": [(code, LOCALE_NAMES[code]) for code in SUPPORTED_LOCALES],
            "time_zones": time_zones(),
            "saved": request.query.get("saved") == "1",
        },
    )


async def preferences_submit(request: web.Request) -> web.StreamResponse:
    user = require_user(request)  # CSRF was checked by the auth middleware
    form = await request.post()
    data = {k: str(form[k]) for k in EDITABLE if k in form}
    changes = check_preferences(data)
    await request.config_dict[DB].run(lambda s: do_set_preferences(s, user.id, changes))
    raise web.HTTPSeeOther("/preferences?saved=1")


async def change_me(request: web.Request) -> web.Response:
    user = require_user(request)
    changes = check_preferences(await read_json_object(request))
    await request.config_dict[DB].run(lambda s: do_set_preferences(s, user.id, changes))
    return web.json_response({**preferences_view(user), **changes})


def setup(app: web.Application) -> None:
    app.router.add_get("/preferences", preferences_page)
    app.router.add_post("/preferences", preferences_submit)


def setup_api(api: web.Application) -> None:
    api.router.add_patch("/me", change_me)
