"""What the customer wrote in a reply, without the mail it quotes or their signature.

Cut in this order: our own marker line (it works in any language, because we wrote it);
the two Chinese attribution formats mail-parser-reply misses (Gmail's "在…写道：" and
"…于…写道：", Outlook's "发件人：" with a full-width colon); the `-- ` signature
delimiter (RFC 3676); then mail-parser-reply's reply headers in a dozen languages.

We use mail-parser-reply only to split replies, never its signature or disclaimer
guesses: those drop everything after a line starting "Thanks," or "Best," — customer
text included ("Thanks, but it still fails. Error 42 …").
"""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage

# The line above every mail we send. A reply is whatever comes before it.
REPLY_MARKER = "—— reply above this line / 请在此行以上回复 ——"
_MARKER_PHRASES = ("reply above this line", "请在此行以上回复")
# mail-parser-reply's languages, each with words its reply headers cannot do without.
# Every language costs a regex pass over the text (about 7 ms per 50 KB), so only those
# whose words occur are asked for; English is always in. Left out: Polish and Italian,
# whose one-line headers ("Data:", "A:") cut ordinary sentences.
_LANGUAGE_HINTS = {
    "zh": ("写道", "发件人"),
    "ja": ("年",),
    "ko": ("작성", "보낸"),
    "de": ("schrieb", "Von:"),
    "fr": ("écrit", "De :", "De:"),
    "es": ("escribió", "De:"),
    "nl": ("schreef", "Van:"),
    "sv": ("skrev", "Från:"),
    "da": ("skrev", "Fra:"),
    "cs": ("napsal", "Od:"),
}

_QUOTE_PREFIX = r"[ \t>]*"
_ZH_ATTRIBUTION = re.compile(
    # Gmail: "在 2025年1月6日周一 上午10:30，Support <s@x> 写道：", often wrapped once.
    rf"^{_QUOTE_PREFIX}在[^\n]{{1,160}}(?:\n{_QUOTE_PREFIX}[^\n]{{0,160}})?写道[：:][ \t]*$"
    # Newer Gmail: "Support <s@x> 于2025年1月6日周一 10:30写道：".
    rf"|^{_QUOTE_PREFIX}[^\n]{{0,160}}于\s*\d{{4}}年[^\n]{{1,80}}"
    rf"(?:\n{_QUOTE_PREFIX}[^\n]{{0,80}})?写道[：:][ \t]*$",
    re.MULTILINE,
)
# Outlook (zh): "发件人：" followed within a few lines by the date, recipient or subject.
_ZH_OUTLOOK = re.compile(
    rf"^{_QUOTE_PREFIX}\**发件人\**[：:][^\n]*(?:\n[^\n]*){{0,3}}?\n{_QUOTE_PREFIX}\**"
    r"(?:发送时间|日期|收件人|主题)\**[：:]",
    re.MULTILINE,
)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)


def _marker_cut(text: str) -> int | None:
    lowered = text.lower()
    positions = [p for p in (lowered.find(phrase) for phrase in _MARKER_PHRASES) if p >= 0]
    if not positions:
        return None
    return text.rfind("\n", 0, min(positions)) + 1


def _earliest_cut(text: str) -> int:
    cuts = [len(text)]
    marker = _marker_cut(text)
    if marker is not None:
        cuts.append(marker)
    for pattern in (_ZH_ATTRIBUTION, _ZH_OUTLOOK, _SIGNATURE):
        found = pattern.search(text)
        if found is not None:
            cuts.append(found.start())
    return min(cuts)


def _without_trailing_quote(text: str) -> str:
    lines = text.rstrip().split("\n")
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines)


def strip_reply(text: str) -> str:
    """The new part of a reply. If cutting leaves nothing (a bare forward, a mail that is
    all quote), the whole text is kept: losing what a customer sent is worse."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    head = text[: _earliest_cut(text)]
    languages = [lang for lang, hints in _LANGUAGE_HINTS.items() if any(h in head for h in hints)]
    parsed = EmailMessage(head, languages=["en", *languages], keep_hyphen_lists=True).read()
    reply = parsed.replies[0].full_body if parsed.replies else head
    reply = _without_trailing_quote(reply).strip()
    return reply or text.strip()
