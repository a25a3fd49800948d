"""The interface in English and Chinese, per user, and each user's time zone.

The catalog test reads every template and staff script: a string shown through `_()` or
`t()` with no Chinese translation fails here, so a page cannot quietly ship half English.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import AppClient, create_user, login
from web.i18n import catalog, locale_from_header, translate

WEB = Path(__file__).resolve().parents[2] / "web"
# `_("...")` / `_('...')` in templates; `t('...')` / `SB.t("...")` in scripts.
TEMPLATE_CALL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
SCRIPT_CALL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
# Customer-facing pages choose their language per customer with their own texts.
NOT_STAFF_SCRIPTS = {"widget", "demo.js"}


def used_strings() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((WEB / "templates").glob("*.html")):
        for a, b in TEMPLATE_CALL.findall(path.read_text(encoding="utf-8")):
            found.setdefault(a or b, set()).add(path.name)
    for path in sorted((WEB / "static").rglob("*.js")):
        if NOT_STAFF_SCRIPTS & set(path.relative_to(WEB / "static").parts):
            continue
        for a, b in SCRIPT_CALL.findall(path.read_text(encoding="utf-8")):
            found.setdefault(a or b, set()).add(path.name)
    return found


def test_every_interface_string_has_a_chinese_translation() -> None:
    used = used_strings()
    assert len(used) > 30  # the scan finds the strings (a broken pattern finds none)
    missing = {text: sorted(files) for text, files in used.items() if text not in catalog("zh")}
    assert not missing, f"add these to web/i18n/zh/<area>.json: {missing}"


def test_translation_fills_placeholders_and_falls_back_to_english() -> None:
    assert translate("zh", "{n} min", n=5) == "5 分钟"
    assert translate("en", "{n} min", n=5) == "5 min"
    assert translate("zh", "a string nobody translated") == "a string nobody translated"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh;q=0.5", "en"),
        ("fr-FR,zh-TW;q=0.7", "zh"),
        ("fr-FR", "en"),
        ("", "en"),
        ("zh;q=abc, en", "en"),
    ],
)
def test_browser_language_picks_a_supported_locale(header: str, expected: str) -> None:
    assert locale_from_header(header) == expected


async def test_login_page_follows_the_browser_language(client: AppClient) -> None:
    page = await client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    html = await page.text()
    assert '<html lang="zh-CN"' in html
    assert "登录团队收件箱" in html
    english = await (await client.get("/login")).text()
    assert "Log in to your team inbox" in english


async def test_a_user_switches_the_interface_to_chinese_and_a_time_zone(
    client: AppClient, db: object
) -> None:
    await create_user(db, "li@example.com", "agent", "Li")  # type: ignore[arg-type]
    csrf = await login(client, "li@example.com")
    page = await (await client.get("/inbox")).text()
    assert "Log out" in page and 'data-timezone="UTC"' in page

    saved = await client.post(
        "/preferences",
        data={"csrf_token": csrf, "locale": "zh", "timezone": "Asia/Shanghai"},
        allow_redirects=False,
    )
    assert saved.status == 303
    page = await (await client.get("/inbox")).text()
    assert "退出登录" in page and "发送" in page
    assert 'lang="zh-CN"' in page and 'data-timezone="Asia/Shanghai"' in page
    # The catalog reaches the page's scripts as data, never as script.
    assert '<script type="application/json" id="sb-i18n">' in page

    me = await (await client.get("/api/v1/me")).json()
    assert (me["locale"], me["timezone"]) == ("zh", "Asia/Shanghai")


async def test_preferences_refuse_bad_values_and_other_fields(
    client: AppClient, db: object
) -> None:
    user_id = await create_user(db, "wang@example.com", "agent", "Wang")  # type: ignore[arg-type]
    csrf = await login(client, "wang@example.com")
    headers = {"X-CSRF-Token": csrf}
    for body, word in [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"locale": "xx"}, "locale"),
        ({"role": "admin"}, "role"),
        ({"locale": "zh", "id": 1}, "id"),
    ]:
        refused = await client.patch("/api/v1/me", json=body, headers=headers)
        assert refused.status == 400, body
        assert word in (await refused.json())["error"]["message"]
    me = await (await client.get("/api/v1/me")).json()
    assert (me["id"], me["role"], me["locale"]) == (user_id, "agent", "en")
    # Without the CSRF token a session-cookie PATCH changes nothing.
    assert (await client.patch("/api/v1/me", json={"locale": "zh"})).status == 403
    ok = await client.patch("/api/v1/me", json={"timezone": "Europe/Berlin"}, headers=headers)
    assert ok.status == 200 and (await ok.json())["timezone"] == "Europe/Berlin"


async def test_preferences_need_a_login(client: AppClient) -> None:
    page = await client.get("/preferences", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"].startswith("/login")
    assert (await client.patch("/api/v1/me", json={"locale": "zh"})).status == 401
