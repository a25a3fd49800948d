"""The client's address: the transport peer, unless that peer is a proxy we trust.

Behind a load balancer every request comes from the balancer; login throttling and the
per-address socket cap must see the real client instead. `X-Forwarded-For` is read only
when the peer is in `SWITCHBOARD_TRUSTED_PROXIES`, and then from the right: the first
address that is not itself a trusted proxy is the client. Anything to its left was
written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from switchboard.appkeys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(request: web.Request) -> str:
    peer = request.remote or "unknown"
    proxies = request.config_dict[SETTINGS].trusted_proxies
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: fall back to what we know
    return peer
