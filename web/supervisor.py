"""The supervisor dashboard page (`/supervisor`): supervisors and admins only.

The page is a shell; `web/static/supervisor.js` fills it from `/api/v1/supervisor/*` and
`/api/v1/reports/*` (`web.supervisor_api`) and keeps it live over the agent socket
(`/inbox/ws`: ticket, SLA and presence events). Anonymous visitors are sent to log in;
agents get the same 404 as for a page that does not exist (the dashboard is not theirs,
and the top bar does not offer it to them).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from web.access import READER_ROLES
from web.auth import csrf_token, current_user


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=/supervisor")
    if user.role not in READER_ROLES:
        raise web.HTTPNotFound()
    return aiohttp_jinja2.render_template(
        "supervisor.html", request, {"user": user, "csrf_token": csrf_token(request)}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/supervisor", supervisor_page)
