"""Whether the sender's address is vouched for: our own MTA's DMARC verdict, nothing else.

A `From:` header is whatever the sender typed. The one thing we believe is the topmost
`Authentication-Results` (RFC 8601), because the MTA that handed us the mail added it
last; anything below it came with the message and may be forged
(NousResearch/hermes-agent GHSA-rxqh-5572-8m77). It must also carry the authserv-id we
were told our MTA uses: without that pin the topmost header could be the sender's own —
our embedded SMTP ingress, for one, adds no such header — so with no authserv-id
configured no sender is ever verified.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"\([^()]*\)")


def _without_comments(value: str) -> str:
    previous = None
    while previous != value:
        previous, value = value, _COMMENT.sub(" ", value)
    return value


def dmarc_verified_domain(topmost: str | None, authserv_id: str | None) -> str | None:
    """The From domain our MTA says passed DMARC, or None."""
    if not topmost or not authserv_id:
        return None
    parts = _without_comments(topmost).split(";")
    head = parts[0].split()
    if not head or head[0].lower() != authserv_id.strip().lower():
        return None
    for resinfo in parts[1:]:
        tokens = resinfo.split()
        if not tokens or tokens[0].lower() != "dmarc=pass":
            continue
        for token in tokens[1:]:
            key, _, value = token.partition("=")
            if key.lower() == "header.from" and value:
                return value.strip().strip('"').lower()
    return None


def verified_sender(sender: str, topmost: str | None, authserv_id: str | None) -> str | None:
    """`sender` if our MTA's DMARC pass is for exactly the sender's domain."""
    domain = dmarc_verified_domain(topmost, authserv_id)
    if domain is None or "@" not in sender:
        return None
    return sender if sender.rpartition("@")[2].lower() == domain else None
