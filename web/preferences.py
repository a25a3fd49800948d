"""Each user's own settings: language, time zone and password.

A page (`/preferences`, plain forms, works without scripts) and the API
(`PATCH /api/v1/me`). Only language and time zone can be changed through the API: a body
naming anything else (role, email, active) is refused, so nobody changes their own role.

Changing the password asks for the current one (throttled per user, so a borrowed
session cannot guess it), ends every session and API token made with the old one (other
browsers and open sockets included), and starts a fresh session for this browser.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import accounts
from switchboard.appkeys import DB, LIMITER
from switchboard.audit import record
from switchboard.errors import InvalidInput
from switchboard.models import User
from web.auth import csrf_token, current_user, require_user, set_session_cookie
from web.bodies import read_json_object
from web.clientip import client_address
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
    return aiohttp_jinja2.render_template("preferences.html", request, _page_context(request, user))


def _page_context(request: web.Request, user: User) -> dict[str, Any]:
    return {
        "user": user,
        "csrf_token": csrf_token(request),
        "active": "preferences",
        "locales": [(code, LOCALE_NAMES[code]) for code in SUPPORTED_LOCALES],
        "time_zones": time_zones(),
        "saved": request.query.get("saved", ""),
        "password_error": None,
    }


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


PASSWORD_LIMIT = (5, 900)  # wrong current passwords per user per 15 minutes


async def password_submit(request: web.Request) -> web.StreamResponse:
    user = require_user(request)  # CSRF was checked by the auth middleware
    form = await request.post()
    current = str(form.get("current_password", ""))[:1024]
    new = str(form.get("new_password", ""))
    confirm = str(form.get("confirm_password", ""))
    limiter = request.config_dict[LIMITER]
    key = f"password:user:{user.id}"
    if await limiter.blocked(key, *PASSWORD_LIMIT):
        return _password_error(request, user, "Too many wrong passwords. Try again later.", 429)
    db = request.config_dict[DB]
    async with db.reading() as session:
        checked = await accounts.authenticate(session, user.email, current)
    if checked is None or checked.id != user.id:
        await limiter.hit(key, *PASSWORD_LIMIT)
        return _password_error(request, user, "The current password is wrong.", 400)
    if len(new) < accounts.MIN_PASSWORD_LENGTH or len(new) > 1024:
        return _password_error(request, user, "The new password needs at least 10 characters.")
    if new != confirm:
        return _password_error(request, user, "The two new passwords differ.")
    if new == current:
        return _password_error(request, user, "The new password must differ from the old one.")
    password_hash = await accounts.hash_password(new)

    async def change(session: AsyncSession) -> accounts.NewSession:
        revoked = await accounts.do_set_password(session, user.id, password_hash)
        await record(
            session,
            "auth.password_changed",
            actor=user,
            address=client_address(request),
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            details={"tokens_revoked": revoked},
        )
        return await accounts.do_start_session(session, user)

    fresh = await db.run(change)
    await limiter.reset(key)
    response = web.HTTPSeeOther("/preferences?saved=password")
    set_session_cookie(request, response, fresh.token)
    raise response


def _password_error(
    request: web.Request, user: User, message: str, status: int = 400
) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "preferences.html",
        request,
        {**_page_context(request, user), "password_error": message},
        status=status,
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/preferences", preferences_page)
    app.router.add_post("/preferences", preferences_submit)
    app.router.add_post("/preferences/password", password_submit)


def setup_api(api: web.Application) -> None:
    api.router.add_patch("/me", change_me)
