"""Who is calling: session cookies for the browser, bearer tokens for the API.

Sessions rotate at login and are revoked server-side at logout (this one, or every
session of the user with "log out everywhere"). Unsafe requests made
with a session cookie must carry the session's CSRF token. Login is throttled per
account and per client address (the transport peer; forwarded headers are not trusted).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import accounts
from switchboard.appkeys import DB, LIMITER, SETTINGS
from switchboard.audit import record
from switchboard.errors import Forbidden, TooManyRequests
from switchboard.models import AuthSession, User
from switchboard.ratelimit import RateLimiter
from web.clientip import client_address
from web.middleware import Handler

SESSION_COOKIE = "sb_session"
LOGIN_CSRF_COOKIE = "sb_login_csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ACCOUNT_LIMIT = (5, 900)  # failed logins per account per 15 minutes
ADDRESS_LIMIT = (20, 900)  # failed logins per client address per 15 minutes
USER_KEY = web.RequestKey("user", User)
SESSION_KEY = web.RequestKey("auth_session", AuthSession)
TOKEN_KEY = web.RequestKey("session_token", str)
# Routes (by name) whose POST is authorised by something other than the session, which
# they never read, so a staff session in the same browser must not refuse them: the
# CSAT rating form (`web.csat`) posts to its signed, single-survey, expiring link; the
# widget (`web.widget`, served from the hub's origin, so its requests carry a logged-in
# agent's cookie) authenticates by visitor token; channel webhooks by their signature.
CSRF_EXEMPT_ROUTES = frozenset(
    {"csat-rate", "widget-session", "widget-upload", "webhook", "webhook-slack"}
)


def current_user(request: web.Request) -> User | None:
    return request.get(USER_KEY)


def require_user(request: web.Request) -> User:
    user = current_user(request)
    if user is None:
        raise web.HTTPUnauthorized(
            text='{"error":{"code":"unauthenticated","message":"log in first"}}',
            content_type="application/json",
        )
    return user


def csrf_token(request: web.Request) -> str:
    auth_session = request.get(SESSION_KEY)
    return auth_session.csrf_token if auth_session else ""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    db = request.config_dict[DB]
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization[len("Bearer ") :].strip()
        async with db.reading() as session:
            user = await accounts.token_user(session, token)
        if user is None:
            raise web.HTTPUnauthorized(
                text='{"error":{"code":"bad_token","message":"invalid API token"}}',
                content_type="application/json",
            )
        request[USER_KEY] = user
        return await handler(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with db.reading() as session:
            found = await accounts.session_user(session, cookie)
        if found is not None:
            request[USER_KEY], request[SESSION_KEY] = found
            request[TOKEN_KEY] = cookie
            if (
                request.method not in SAFE_METHODS
                and request.path != "/login"
                and request.match_info.route.name not in CSRF_EXEMPT_ROUTES
            ):
                _check_csrf(request, found[1], await _form_csrf(request))
    return await handler(request)


async def _form_csrf(request: web.Request) -> str:
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if request.content_type == "multipart/form-data":
            return request.query.get("csrf_token", "")
        form = await request.post()
        value = form.get("csrf_token", "")
        return value if isinstance(value, str) else ""
    return ""


def _tokens_match(supplied: str, expected: str) -> bool:
    """Constant-time, on bytes: `compare_digest` raises TypeError on non-ASCII str, and
    a token is attacker input that may contain anything."""
    if not supplied or not expected:
        return False
    return hmac.compare_digest(
        supplied.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _check_csrf(request: web.Request, auth_session: AuthSession, supplied: str) -> None:
    if not _tokens_match(supplied, auth_session.csrf_token):
        raise Forbidden("missing or wrong CSRF token", code="csrf")


def safe_next(target: str | None) -> str:
    """Only same-origin paths: `//evil.com`, `/\\evil.com` and absolute URLs go home."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/inbox"
    if "\\" in target or any(ord(c) < 32 for c in target):
        return "/inbox"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/inbox"
    return target


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """The browser's session cookie for a session just started."""
    lifetime = int(accounts.SESSION_LIFETIME.total_seconds())
    _set_cookie(request, response, SESSION_COOKIE, token, lifetime)


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=request.config_dict[SETTINGS].secure_cookies,
        path="/",
    )


async def login_page(request: web.Request) -> web.StreamResponse:
    if current_user(request) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    token = secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"csrf_token": token, "next": safe_next(request.query.get("next")), "error": None},
    )
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


async def _wait_out_lockout(limiter: RateLimiter, account_key: str, address_key: str) -> None:
    for key, (limit, window) in ((account_key, ACCOUNT_LIMIT), (address_key, ADDRESS_LIMIT)):
        wait = await limiter.blocked(key, limit, window)
        if wait:
            raise TooManyRequests(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))[:1024]
    supplied = str(form.get("csrf_token", ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _tokens_match(supplied, expected):
        raise Forbidden("the login form expired; reload the page", code="csrf")
    next_url = safe_next(str(form.get("next", "")))
    limiter = request.config_dict[LIMITER]
    account_key = "login:acct:" + email.strip().lower()
    address_key = "login:addr:" + client_address(request)
    db = request.config_dict[DB]
    # Refuse a locked-out account or address before hashing: Argon2 runs on the event
    # loop, and a flood of doomed attempts must not cost a hash each.
    await _wait_out_lockout(limiter, account_key, address_key)
    async with db.reading() as session:
        user = await accounts.authenticate(session, email, password)
    if user is None:
        await db.run(
            lambda s: record(
                s, "auth.login_failed", actor_label=email.strip().lower()[:320],
                address=client_address(request),
            )
        )  # fmt: skip
        wait = max(
            await limiter.hit(account_key, *ACCOUNT_LIMIT),
            await limiter.hit(address_key, *ADDRESS_LIMIT),
        )
        if wait:
            raise TooManyRequests(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )
        response = aiohttp_jinja2.render_template(
            "login.html",
            request,
            # One message for an unknown email and a wrong password.
            {"csrf_token": expected, "next": next_url, "error": "Wrong email or password."},
            status=401,
        )
        return response
    # Even a correct password waits out an account that is under attack (checked again:
    # failures may have come in while this password was being verified).
    await _wait_out_lockout(limiter, account_key, address_key)
    await limiter.reset(account_key)
    if old := request.cookies.get(SESSION_COOKIE):
        await db.run(lambda s: accounts.do_end_session(s, old))

    async def start(s: AsyncSession) -> accounts.NewSession:
        started = await accounts.do_start_session(s, user)
        await record(s, "auth.login", actor=user, address=client_address(request))
        return started

    new = await db.run(start)
    response = web.HTTPSeeOther(next_url)
    _set_cookie(
        request, response, SESSION_COOKIE, new.token, int(accounts.SESSION_LIFETIME.total_seconds())
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.get(TOKEN_KEY)
    if token:
        user = current_user(request)

        async def end(s: AsyncSession) -> None:
            await accounts.do_end_session(s, token)
            await record(s, "auth.logout", actor=user, address=client_address(request))

        await request.config_dict[DB].run(end)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    """End every session of the caller (every browser, every tab) and close their live
    sockets on every process: for a lost laptop or a shared computer."""
    user = current_user(request)
    if user is not None:
        user_id = user.id

        async def end_all(s: AsyncSession) -> None:
            await accounts.do_end_all_sessions(s, user_id)
            await record(
                s, "auth.sessions_revoked", actor=user, address=client_address(request),
                target_type="user", target_id=user_id, target_label=user.email,
            )  # fmt: skip

        await request.config_dict[DB].run(end_all)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_post("/logout/everywhere", logout_everywhere)
