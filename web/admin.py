"""The admin console: `/admin` and `/admin/{section}`, for admins only.

The page is a shell (left navigation, each section's forms and labels, rendered and
escaped by Jinja); `web/static/admin.js` fills it from the JSON API (`web.admin_api` and
the settings routes of the other modules) and sends every change through it, so every
rule and every audit entry lives in one place: the API. Anyone signed in who is not an
admin gets the same 404 as for a page that does not exist; no session goes to login.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from switchboard.appkeys import SETTINGS
from switchboard.models import Role
from web.auth import csrf_token, current_user

# (path segment, English title): the order of the left navigation.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("kb", "Knowledge base"),
    ("users", "Users and roles"),
    ("queues", "Teams and queues"),
    ("inboxes", "Inboxes"),
    ("rules", "Routing rules"),
    ("sla", "SLA and hours"),
    ("canned", "Canned replies"),
    ("bot", "Bot"),
    ("audit", "Audit log"),
)
_NAMES = {key for key, _title in SECTIONS}


async def admin_page(request: web.Request) -> web.StreamResponse:
    section = request.match_info.get("section", "kb")
    user = current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=/admin")
    if user.role != Role.ADMIN or section not in _NAMES:
        raise web.HTTPNotFound()  # the same body as a path that does not exist
    return aiohttp_jinja2.render_template(
        "admin.html",
        request,
        {
            "user": user,
            "csrf_token": csrf_token(request),
            "sections": SECTIONS,
            "section": section,
            "public_url": request.config_dict[SETTINGS].public_url.rstrip("/"),
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", admin_page)
    app.router.add_get("/admin/{section}", admin_page)
