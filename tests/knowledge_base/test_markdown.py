"""Answers render to HTML that cannot run script, whatever an admin (or an importer) wrote."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from knowledge_base.markdown import plain_text, render_answer


class _Tags(HTMLParser):
    """The tags and attributes a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click](/relative/path)",
    "[click]( javascript:alert(1))",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    '<svg onload="alert(1)">',
    "<iframe src='https://evil.example'></iframe>",
    '[x](https://ok.example "a\\" onmouseover=\\"alert(1)")',
    "![x](https://evil.example/pixel.png)",
    "<style>body{display:none}</style>",
    "| a |\n|---|\n| <b onclick=alert(1)>x</b> |",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_renders_inert(source: str) -> None:
    parsed = _Tags()
    parsed.feed(render_answer(source))
    assert {tag for tag, _ in parsed.found} <= {
        "p",
        "a",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
    for _tag, attrs in parsed.found:
        assert not any(name.startswith("on") for name, _ in attrs)  # no event handlers
        for name, value in attrs:
            if name == "href":
                assert (value or "").startswith(("https://", "http://", "mailto:"))


def test_ordinary_markdown_survives() -> None:
    html = render_answer(
        "# Returns\n\nSend it back within **30 days**: see [the policy](https://shop.example/returns)"
        " or write to [us](mailto:help@shop.example).\n\n1. Pack it\n2. Ship it\n\n`code`"
    )
    assert "<h1>Returns</h1>" in html
    assert "<strong>30 days</strong>" in html
    assert '<a href="https://shop.example/returns" rel="noopener noreferrer nofollow">' in html
    assert 'href="mailto:help@shop.example"' in html
    assert "<ol>" in html and "<li>Pack it</li>" in html and "<code>code</code>" in html


def test_plain_text_keeps_words_and_link_addresses() -> None:
    text = plain_text("We are open **9–18**.\n\nSee [hours](https://shop.example/h) & more.")
    assert text == "We are open 9–18.\nSee hours (https://shop.example/h) & more."
    assert plain_text("<script>x</script>") == "<script>x</script>"  # shown, never run
