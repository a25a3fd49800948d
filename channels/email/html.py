"""HTML mail: made safe to show in the agent's inbox, and turned into plain text.

The sanitiser is nh3 (ammonia): an allow-list, so `<script>`, `<style>`, `<meta
refresh>`, `<xmp>`, forms, frames and every `on*` handler go, and links keep only
http(s)/mailto targets. Inline styles keep a few harmless properties: a `<style>` block
or a `url()` can read the page or call home (FreeScout GHSA-fh99-wr77-pxq3).
"""

from __future__ import annotations

import html2text
import nh3

# Colours and emphasis only: no position (overlays), no background images.
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "text-decoration",
    "text-align",
}
_DROPPED_WITH_CONTENT = {"script", "style", "title", "head"}
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["*"] = {"style"}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # Remote images are not loaded: an image URL is a tracking pixel that tells the
    # sender when, where (the agent's IP address) and how often the mail was read
    # (Zulip CVE-2022-36048), and we have no image proxy. `cid:` images are parts of
    # this mail, stored as its attachments, so they cost nothing to keep.
    if tag == "img" and attribute == "src" and not value.strip().lower().startswith("cid:"):
        return None
    return value


def sanitise_html(html: str) -> str:
    """HTML that is inert in our pages: no script, handlers, styles sheets or remote images."""
    return nh3.clean(
        html,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_keep_attribute,
        filter_style_properties=_STYLE_PROPERTIES,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        strip_comments=True,
    ).strip()


def html_to_text(html: str) -> str:
    """The words of an HTML mail, without what it quotes: `<blockquote>` (Gmail's
    `.gmail_quote`, Apple Mail, Thunderbird) is dropped with its content; the attribution
    line left above it is cut later with the other quote headers."""
    bare = nh3.clean(
        html,
        tags=nh3.ALLOWED_TAGS - {"blockquote"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        clean_content_tags=_DROPPED_WITH_CONTENT | {"blockquote"},
        strip_comments=True,
    )
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never wrap: wrapped lines hide "On … wrote:" from the cutter
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.unicode_snob = True
    return str(converter.handle(bare)).strip()
