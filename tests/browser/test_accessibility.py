"""Every staff page checked by machine for accessibility and for tablets (issue 6, point 6).

axe-core (from the `axe-playwright-python` package on PyPI, installed with the `test` extra,
never copied into the repository) runs in Debian's Chromium against /login, the inbox (the
list, an open conversation with its profile panel, the shortcuts overlay), the supervisor
dashboard, each section of the admin console and /preferences — in English and in Chinese,
at 1280 px and at 768 px. A violation of impact "serious" or "critical" (or of the heading
and landmark rules) fails the test, listed page by page; ALLOWED below names the findings
that are false positives, each with its reason. The first 40 Tab stops of each page must
look different while focused (checked in English). At 768 px no page may scroll sideways,
and each page is screenshotted there.

Then the keyboard: the shortcuts overlay and the merge dialog keep focus inside, close on
Escape and give focus back; so does the profile panel where it covers the conversation (a
tablet); the supervisor's chart bars are reached with Tab and drill down with Enter or
Space.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import update

from knowledge_base.commands import import_file
from switchboard.appkeys import DB
from switchboard.models import User
from tests.bot.dialogue_support import DEMO_KB
from tests.browser.support import log_in
from tests.browser.test_supervisor_journey import arrange
from tests.conftest import create_user
from web.admin import SECTIONS

pytestmark = pytest.mark.browser

WIDTHS = (1280, 768)
FAILING_IMPACTS = {"serious", "critical"}
# axe rates these "moderate", but issue 6 names them (headings order, landmark regions):
# they fail the test too.
FAILING_RULES = {
    "heading-order",
    "page-has-heading-one",
    "region",
    "landmark-one-main",
    "landmark-unique",
    "landmark-no-duplicate-main",
    "landmark-complementary-is-top-level",
    "landmark-main-is-top-level",
}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

# (rule id, CSS selector of the node or "*" for any node): findings that are not real.
ALLOWED: set[tuple[str, str]] = set()

Check = Callable[[Page], Awaitable[None]]


async def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each
    (rule, impact, the element, what to fix), less the allowed false positives."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(
        page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": []}
    )
    found: list[str] = []
    for violation in results.response["violations"]:
        if violation["impact"] not in FAILING_IMPACTS and violation["id"] not in FAILING_RULES:
            continue
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            if (violation["id"], "*") in ALLOWED or (violation["id"], target) in ALLOWED:
                continue
            found.append(
                f"{violation['id']} ({violation['impact']}) at {target}: {violation['help']}"
                f" — {node.get('failureSummary', '').replace(chr(10), ' ')}"
                f" [{node['html'][:160]}]"
            )
    return found


async def horizontal_overflow(page: Page) -> str | None:
    """None when nothing sticks out sideways; otherwise the widths and the widest culprits."""
    report: str | None = await page.evaluate(
        """() => {
          const root = document.documentElement;
          if (root.scrollWidth <= window.innerWidth) return null;
          const wide = [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .filter((el) => getComputedStyle(el).position !== 'fixed')
            .slice(0, 5)
            .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                 (el.className && typeof el.className === 'string'
                   ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
                 ' right=' + Math.round(el.getBoundingClientRect().right));
          return `scrollWidth ${root.scrollWidth} > ${window.innerWidth}: ${wide.join(', ')}`;
        }"""
    )
    return report


FOCUS_STYLE = """(el) => {
  el.getAnimations().forEach((a) => a.finish());  // a transition shows its end state
  const s = getComputedStyle(el);
  return [s.outlineStyle === 'none' ? 'none' : s.outlineStyle + s.outlineWidth + s.outlineColor,
          s.boxShadow, s.borderColor, s.backgroundColor, s.color, s.stroke, s.strokeWidth,
          s.textDecorationLine].join('|');
}"""


async def focus_not_visible(page: Page, stops: int = 40) -> list[str]:
    """Tab through the page's first `stops` focus stops; each must look different while it
    has the focus (outline, shadow, border, colours or stroke) from when it has not."""
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    seen: list[tuple[str, str]] = []
    for n in range(stops):
        await page.keyboard.press("Tab")
        found = await page.evaluate(
            f"""(n) => {{
              const el = document.activeElement;
              if (!el || el === document.body || el.dataset.a11yStop) return null;
              el.dataset.a11yStop = String(n);
              const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' +
                (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 40) + '"';
              return [name, ({FOCUS_STYLE})(el)];
            }}""",
            n,
        )
        if found is None:
            break
        seen.append((found[0], found[1]))
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    await page.mouse.move(0, 0)
    unchanged: list[str] = []
    for n, (name, focused) in enumerate(seen):
        plain = await page.evaluate(
            f"""(n) => {{
              const el = document.querySelector(`[data-a11y-stop="${{n}}"]`);
              return el ? ({FOCUS_STYLE})(el) : null;
            }}""",
            n,
        )
        if plain == focused:
            unchanged.append(f"focus not visible on {name}")
    return unchanged


async def settle(page: Page) -> None:
    """The page's own requests are done (its live socket does not count)."""
    # A page that keeps polling is checked as it is after 5 s.
    with contextlib.suppress(PlaywrightTimeout):
        await page.wait_for_load_state("networkidle", timeout=5_000)


async def open_conversation(page: Page) -> None:
    await page.locator("#conversation-list [data-conversation-id]").first.click()
    await expect(page.locator("#messages li").first).to_be_visible(timeout=10_000)
    await expect(page.locator("#profile-name")).not_to_be_empty(timeout=10_000)


async def open_shortcuts(page: Page) -> None:
    await open_conversation(page)
    await page.locator("#messages").click()
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts-dialog")).to_be_visible()


async def nothing(page: Page) -> None:
    return None


async def open_filters(page: Page) -> None:
    await page.locator("#list-filters summary").click()
    await expect(page.locator("#filter-status")).to_be_visible()


async def search(page: Page) -> None:
    await page.fill("#search-input", "invoice")
    await expect(page.locator("#search-results")).to_contain_text("invoice", timeout=10_000)


async def open_drill(page: Page) -> None:
    await page.locator(".sv-queue .sv-number").first.click()
    await expect(page.locator("#sv-drill tbody tr").first).to_be_visible(timeout=10_000)


async def open_article(page: Page) -> None:
    await page.locator("#kb-list li").first.locator("button, a").first.click()
    await expect(page.locator("#kb-preview")).not_to_be_empty(timeout=10_000)


async def add_every_condition(page: Page) -> None:
    """The rule form with one condition of each kind, so that every input shows."""
    kinds = await page.locator("#rule-add-kind option").evaluate_all(
        "(options) => options.map((o) => o.value)"
    )
    for kind in kinds:
        if not await page.locator(f'#rule-add-kind option[value="{kind}"]').count():
            continue
        await page.select_option("#rule-add-kind", kind)
        await page.click("#rule-add-condition")


def staff_pages() -> list[tuple[str, str, Check]]:
    pages: list[tuple[str, str, Check]] = [
        ("inbox", "/inbox", nothing),
        ("inbox-conversation", "/inbox", open_conversation),
        ("inbox-shortcuts", "/inbox", open_shortcuts),
        ("inbox-filters", "/inbox", open_filters),
        ("inbox-search", "/inbox", search),
        ("supervisor", "/supervisor", nothing),
        ("supervisor-drill", "/supervisor", open_drill),
    ]
    pages += [(f"admin-{key}", f"/admin/{key}", nothing) for key, _title in SECTIONS]
    pages += [
        ("admin-kb-article", "/admin/kb", open_article),
        ("admin-rules-conditions", "/admin/rules", add_every_condition),
    ]
    pages.append(("preferences", "/preferences", nothing))
    return pages


@pytest.mark.timeout(600)
@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_staff_pages_pass_axe_and_fit_a_tablet(
    browser: Any, hub: Any, screenshot: Any, locale: str
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await arrange(db)
    await import_file(db, DEMO_KB, note="tests")
    await create_user(db, "root@example.com", "admin", "Root Admin")
    await db.run(
        lambda s: s.execute(
            update(User).where(User.email == "root@example.com").values(locale=locale)
        )
    )

    problems: list[str] = []

    async def check(page: Page, name: str, width: int) -> None:
        for finding in await axe_violations(page):
            problems.append(f"{name} @{width}px [{locale}]: {finding}")
        if width < 1280:
            overflow = await horizontal_overflow(page)
            if overflow:
                problems.append(f"{name} @{width}px [{locale}]: overflows sideways, {overflow}")
            await screenshot(page, f"a11y-{name}-{locale}-{width}")

    # Focus styles do not depend on the language: Tab through the pages in English only.
    check_focus = locale == "en"

    async def walk(width: int) -> None:
        """Every page at one width, in a browser context of its own (its own sign-in).
        The widths walk at the same time: most of each page's time is spent waiting for
        the network to go quiet, which the two can share."""
        context = await browser.new_context(
            viewport={"width": width, "height": 900},
            locale="zh-CN" if locale == "zh" else "en-US",
        )
        try:
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await settle(page)
            await check(page, "login", width)
            focus_here = check_focus and width == WIDTHS[0]
            if focus_here:
                problems.extend(f"login: {finding}" for finding in await focus_not_visible(page))
            if locale == "zh":
                await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            await log_in(page, base, "root@example.com")
            for name, path, prepare in staff_pages():
                # Each page is loaded afresh: what a tablet shows is what it starts with.
                await page.goto(f"{base}{path}")
                await settle(page)
                await prepare(page)
                await settle(page)
                await check(page, name, width)
                if focus_here:
                    problems.extend(
                        f"{name}: {finding}" for finding in await focus_not_visible(page)
                    )
        finally:
            await context.close()

    await asyncio.gather(*(walk(width) for width in WIDTHS))
    problems.sort()
    assert not problems, "\n" + "\n".join(problems)


async def focus_stays_inside(page: Page, dialog: str, presses: int = 12) -> None:
    """Tab and Shift+Tab never leave the open modal dialog for the page behind it."""
    for key in ["Tab"] * presses + ["Shift+Tab"] * presses:
        await page.keyboard.press(key)
        where = await page.evaluate(
            """(id) => {
              const active = document.activeElement;
              if (!active || active === document.body) return 'outside the page';
              return document.getElementById(id).contains(active) ? 'inside'
                : active.tagName + '#' + active.id;
            }""",
            dialog,
        )
        # In a headless browser focus may pass through the (absent) browser chrome, seen
        # as the document body, on its way round; it never lands on the page behind.
        assert where in ("inside", "outside the page"), f"{key} left #{dialog} for {where}"
    await expect(page.locator(f"#{dialog}")).to_be_visible()


async def test_chart_bars_and_dialogs_work_from_the_keyboard(
    browser: Any, hub: Any, screenshot: Any
) -> None:
    base = str(hub.make_url("")).rstrip("/")
    db = hub.app[DB]
    await arrange(db)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await log_in(page, base, "sara@example.com", to="/supervisor")

    # The CSAT chart: Tab from the last number above it reaches its first bar, the arrows
    # move along the bars (one Tab stop per chart), Enter drills into the bar's tickets.
    card = page.locator('.sv-chart-card[data-report="csat"]')
    bars = card.locator('.sv-bar[role="button"]')
    await expect(bars).to_have_count(5, timeout=10_000)
    await expect(card.locator("svg.sv-chart")).to_have_attribute("role", "group")
    await card.locator(".sv-summary button").last.focus()
    await page.keyboard.press("Tab")
    await expect(bars.first).to_be_focused()
    await expect(bars.first).to_have_attribute("aria-label", "Rating 1: 0")
    for _ in range(3):
        await page.keyboard.press("ArrowDown")
    fourth = bars.nth(3)
    await expect(fourth).to_be_focused()
    await expect(fourth).to_have_attribute("tabindex", "0")
    await expect(bars.first).to_have_attribute("tabindex", "-1")
    await page.keyboard.press("Enter")
    drill = page.locator("#sv-drill")
    await expect(drill).to_be_visible()
    await expect(page.locator("#sv-drill-title")).to_contain_text("Rating 4")
    await expect(drill.locator("tbody tr")).to_have_count(1)
    assert await axe_violations(page) == []
    await focus_stays_inside(page, "sv-drill")
    await page.keyboard.press("Escape")
    await expect(drill).to_be_hidden()
    await expect(fourth).to_be_focused()  # focus goes back to the bar that opened it
    await page.keyboard.press("End")
    await page.keyboard.press(" ")  # Space works as Enter does
    await expect(page.locator("#sv-drill-title")).to_contain_text("Rating 5")
    await page.keyboard.press("Escape")
    await expect(bars.last).to_be_focused()

    # The inbox's dialogs: the shortcuts overlay and the merge dialog.
    await page.goto(f"{base}/inbox")
    await open_conversation(page)
    opener = page.locator("#shortcuts-button")
    await opener.focus()
    await page.keyboard.press("Enter")
    shortcuts = page.locator("#shortcuts-dialog")
    await expect(shortcuts).to_be_visible()
    await focus_stays_inside(page, "shortcuts-dialog", presses=4)
    await page.keyboard.press("Escape")
    await expect(shortcuts).to_be_hidden()
    await expect(opener).to_be_focused()

    merge = page.locator("#ticket-merge")
    await merge.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#merge-dialog")).to_be_visible()
    assert await axe_violations(page) == []
    await focus_stays_inside(page, "merge-dialog", presses=6)
    await page.keyboard.press("Escape")
    await expect(page.locator("#merge-dialog")).to_be_hidden()
    await expect(merge).to_be_focused()

    # On a tablet the profile panel opens over the conversation: it takes the focus, and
    # Escape closes it and gives the focus back to its button.
    await page.set_viewport_size({"width": 768, "height": 900})
    await page.goto(f"{base}/inbox")
    await open_conversation(page)
    toggle, panel = page.locator("#profile-toggle"), page.locator("#profile-panel")
    if await panel.is_visible():  # as it was left at 1280 px
        await page.locator("#profile-close").click()
    await expect(panel).to_be_hidden()
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#profile-close")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(toggle).to_be_focused()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    # The "p" shortcut does the same both ways.
    await page.keyboard.press("p")
    await expect(page.locator("#profile-close")).to_be_focused()
    await page.keyboard.press("p")
    await expect(panel).to_be_hidden()
    await expect(toggle).to_be_focused()
    await context.close()
