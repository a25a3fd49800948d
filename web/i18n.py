"""The interface in the user's language: English source strings, Chinese catalogs.

Templates and scripts write English (`{{ _("Log out") }}`, `t("Log out")`); the string
itself is the key. Catalogs live in `web/i18n/<locale>/<area>.json`, one file per part of
the app (inbox, supervisor, admin, ...) so the parts are translated side by side, and are
merged at start-up. A string with no translation falls back to English, and
`tests/web/test_i18n.py` fails while any string used by a template or a script has none.

The language is the signed-in user's `locale`; before login it comes from the browser's
Accept-Language. Pages hand their catalog to scripts as a JSON data block (`i18n_json`),
which the CSP allows because it is never executed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "zh")
LOCALE_NAMES = {"en": "English", "zh": "中文"}
CATALOGS = Path(__file__).parent / "i18n"
_LOCALE_KEY = web.RequestKey("switchboard.locale", str)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def catalog(locale: str) -> Mapping[str, str]:
    """English string -> translation, for every area of `locale` (empty for English)."""
    merged: dict[str, str] = {}
    folder = CATALOGS / locale
    if locale == DEFAULT_LOCALE or not folder.is_dir():
        return merged
    for path in sorted(folder.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: a catalog is one JSON object")
        merged.update({str(k): str(v) for k, v in entries.items()})
    return merged


def normalise_locale(raw: str | None) -> str:
    """A supported locale for a user's setting or one Accept-Language tag ("zh-CN" -> zh)."""
    if not raw:
        return DEFAULT_LOCALE
    primary = raw.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in SUPPORTED_LOCALES else DEFAULT_LOCALE


def locale_from_header(header: str | None) -> str:
    """The supported language the browser weighs highest in an Accept-Language header."""
    best, best_q = DEFAULT_LOCALE, 0.0
    for part in (header or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in SUPPORTED_LOCALES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if q > best_q:
            best, best_q = primary, q
    return best


def translate(locale: str, text: str, **params: Any) -> str:
    """`text` in `locale`, with `{name}` placeholders filled from `params`."""
    translated = catalog(locale).get(text, text)
    if not params:
        return translated
    return _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), translated)


def request_locale(request: web.Request) -> str:
    """The signed-in user's language, else the browser's."""
    from web.auth import current_user  # web.auth renders pages with this module's helpers

    user = current_user(request)
    if user is not None:
        return normalise_locale(user.locale)
    return locale_from_header(request.headers.get("Accept-Language"))


@cache
def catalog_json(locale: str) -> str:
    """The catalog as the JSON data block a page hands its scripts."""
    # "</script>" or "<!--" would end or confuse the <script type="application/json">
    # block: no "<" at all (JSON.parse reads the escape back).
    return json.dumps(dict(catalog(locale)), ensure_ascii=False).replace("<", "\\u003c")


async def context_processor(request: web.Request) -> dict[str, Any]:
    """What every page's template gets: `_`, `lang`, `locale`, `i18n_json()`,
    `user_timezone`. Everything is worked out only when a template uses it, so API and
    websocket requests, which render nothing, pay nothing."""

    def locale() -> str:
        if _LOCALE_KEY not in request:
            request[_LOCALE_KEY] = request_locale(request)
        found: str = request[_LOCALE_KEY]
        return found

    def gettext(text: str, **params: Any) -> Markup:
        # Autoescape applies to the result: the translation is text, not markup.
        return Markup.escape(translate(locale(), text, **params))

    def timezone() -> str:
        from web.auth import current_user

        user = current_user(request)
        return (user.timezone if user is not None else None) or "UTC"

    return {
        "_": gettext,
        "locale": locale,
        "html_lang": lambda: "zh-CN" if locale() == "zh" else "en",
        # The catalog is JSON with every "<" escaped (catalog_json): safe inside <script>.
        "i18n_json": lambda: Markup(catalog_json(locale())),  # noqa: S704
        "user_timezone": timezone,
    }
