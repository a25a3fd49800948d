"""Answers are Markdown written by admins and shown to agents and customers: rendered
with raw HTML disabled, then cleaned with an allow-list so no markup or link scheme can
run script (SECURITY item 21: links only http, https and mailto)."""

from __future__ import annotations

import re
from html import unescape

import nh3
from markdown_it import MarkdownIt

# "commonmark" with html off: `<script>` in the source stays text, never a tag.
_md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = {"http", "https", "mailto"}
_ABSOLUTE = ("http://", "https://", "mailto:")
_LINK = re.compile(r'<a href="([^"]*)"[^>]*>(.*?)</a>', re.S)


def _only_absolute_links(tag: str, attribute: str, value: str) -> str | None:
    # nh3 lets scheme-less (relative) URLs through; an answer is shown in the widget on
    # other sites, where a relative link means nothing, and "java%09script:" is one.
    if attribute == "href" and not value.lower().startswith(_ABSOLUTE):
        return None
    return value


def render_answer(source: str) -> str:
    """Safe HTML for an answer's Markdown."""
    html = _md.render(source)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
        attribute_filter=_only_absolute_links,
    )


def plain_text(source: str) -> str:
    """The answer as plain text (channels without HTML, Rasa responses); a link keeps
    its address in brackets so it survives."""
    html = render_answer(source)
    html = _LINK.sub(lambda m: m[2] if m[2] == m[1] else f"{m[2]} ({m[1]})", html)
    html = re.sub(r"</(p|li|h[1-6]|tr|blockquote|pre)>|<br ?/?>", "\n", html)
    text = unescape(nh3.clean(html, tags=set()))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
