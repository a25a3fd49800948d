"""Cross-site websocket hijacking guard: a socket handshake must come from our origin."""

from __future__ import annotations

from aiohttp import web

from switchboard.appkeys import SETTINGS


def origin_allowed(request: web.Request) -> bool:
    """True when the Origin header names this hub (its public URL or the host it was
    reached on). Browsers always send Origin on websocket handshakes; a missing one means
    a non-browser client, which cookies cannot be riding on."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {request.config_dict[SETTINGS].public_origin, f"{request.scheme}://{request.host}"}
    return origin in allowed
