"""Slack's message markup, both ways, kept to what an agent needs to read and write.

Inbound, Slack wraps mentions and links in angle brackets (`<@U024BE7LH>`,
`<https://example.com|the docs>`) and escapes `&`, `<` and `>`; `readable` turns that into
plain text. Outbound, `escaped` escapes the same three characters, so an agent's `<!here>`
or `<https://evil|harmless>` arrives as typed instead of pinging a channel or hiding a link.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"<([^<>]*)>")
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def _token_text(inner: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):  # a user: <@U123> or <@U123|ann>
        return "@" + (label or target[1:])
    if target.startswith("#"):  # a channel: <#C123|general>
        return "#" + (label or target[1:])
    if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^…|fallback>
        name = target[1:]
        if name in _SPECIAL:
            return _SPECIAL[name]
        return label or "@" + name.split("^", 1)[0]
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    if label and label != target:
        return f"{label} ({target})"
    return target


def readable(text: str) -> str:
    """Slack mrkdwn as plain text: mentions by id or label, links with their address."""
    converted = _TOKEN.sub(lambda m: _token_text(m.group(1)), text)
    # Slack escapes exactly these three; &amp; last, so "&amp;lt;" stays "&lt;".
    return converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escaped(text: str) -> str:
    """Plain text safe to post: Slack reads only these three as markup control."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
