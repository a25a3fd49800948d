"""The one error middleware, and the security headers every response carries (set by
`security_headers` on `on_response_prepare`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from channels.base import WebhookRejected
from switchboard.errors import DomainError, TooManyRequests

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TooManyRequests as exc:
        return web.json_response(
            error_body(exc.code, exc.message),
            status=exc.status,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except DomainError as exc:
        return web.json_response(error_body(exc.code, exc.message), status=exc.status)
    except WebhookRejected as exc:
        return web.json_response(error_body("rejected", exc.reason), status=exc.status)
    except web.HTTPException as exc:
        # aiohttp gives its own errors (no route, wrong method) the text "404: Not Found":
        # those become JSON too; an error raised with a text of its own is left alone.
        default_text = f"{exc.status}: {exc.reason}"
        if (
            exc.status >= 400
            and exc.content_type != "application/json"
            and exc.text in (None, "", default_text)
        ):
            return web.json_response(
                error_body(exc.reason.lower().replace(" ", "_"), exc.reason),
                status=exc.status,
                headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
            )
        raise
    except Exception:
        # No internals leave the server: the log has the traceback, the client a plain 500.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(error_body("internal_error", "internal server error"), status=500)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer, just before its headers go out, so errors,
    redirects and streamed downloads (CSV exports) carry them too. An error's JSON may
    echo what the caller sent, and must never be sniffed as HTML."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
