"""The dialogue policy: from what the engine thinks and what the conversation knows to
one decision — answer, clarify, small talk, or hand off. Pure functions, no I/O.

Order matters and is the point of this module: a rule (a VIP) and an explicit request
for a person win over anything the model says; the customer's pick after a Clarify
wins over a new prediction; an engine outage, frustration and out-of-scope hand off;
only then does confidence decide between answering, offering choices and asking to
rephrase. A second miss in a row hands off, so nobody loops with the bot.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import opencc

from bot.engines.base import GOODBYE, GREETING, REQUEST_HUMAN, THANKS, Prediction
from bot.training import pick_variant
from knowledge_base.service import TrainingArticle

EN, ZH_HANS, ZH_HANT = "en", "zh-Hans", "zh-Hant"
LOCALES = (EN, ZH_HANS, ZH_HANT)
# A choice must be at least this likely to be offered at all.
CLARIFY_FLOOR = 0.05
MAX_CHOICES = 3
# How a widget button names a choice; a typed number or the option's text work too.
CHOICE_PAYLOAD = "choice:"
# Channels cut button labels to this many characters (Telegram's reply keyboard).
BUTTON_TEXT = 120


class HandoffReason(enum.StrEnum):
    CUSTOMER_ASKED = "customer_asked"
    RULE = "rule"
    OUT_OF_SCOPE = "out_of_scope"
    SECOND_MISS = "second_miss"
    FRUSTRATION = "frustration"
    ENGINE_UNAVAILABLE = "engine_unavailable"
    AGENT_REPLIED = "agent_replied"


class DecisionKind(enum.StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    REPHRASE = "rephrase"
    SMALL_TALK = "small_talk"
    HANDOFF = "handoff"


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Hand off at once when the customer matches: ``field`` is ``tier``, ``tag``,
    ``email`` or ``email_domain`` (verified addresses only); ``value`` is compared
    case-insensitively."""

    field: str
    value: str
    reason: str = ""

    def matches(self, customer: CustomerFacts) -> bool:
        value = self.value.strip().casefold()
        if self.field == "tier":
            return (customer.tier or "").casefold() == value
        if self.field == "tag":
            return value in {t.casefold() for t in customer.tags}
        emails = [e.casefold() for e in customer.emails if e]
        if self.field == "email":
            return value in emails
        if self.field == "email_domain":
            return any(e.rsplit("@", 1)[-1] == value.lstrip("@") for e in emails)
        return False


RULE_FIELDS = ("tier", "tag", "email", "email_domain")


@dataclass(frozen=True)
class BotSettings:
    """An inbox's thresholds: answer at ``confidence`` or above with a lead of
    ``margin`` over the runner-up; otherwise offer every candidate within
    ``clarify_gap`` of the best, if together they reach ``confidence``."""

    confidence: float = 0.5
    margin: float = 0.2
    clarify_gap: float = 0.3
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class CustomerFacts:
    tier: str | None = None
    tags: frozenset[str] = frozenset()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    topic: str
    title: str  # the article's question, in the customer's language
    confidence: float


@dataclass(frozen=True)
class BotMemory:
    """What the bot remembers between turns of one conversation."""

    misses: int = 0
    locale: str | None = None
    pending: tuple[Choice, ...] = ()


# --- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    topic: str
    article: TrainingArticle
    confidence: float
    text: str  # Markdown (the article's answer)
    kind: DecisionKind = DecisionKind.ANSWER


@dataclass(frozen=True)
class Clarify:
    choices: tuple[Choice, ...]
    text: str
    kind: DecisionKind = DecisionKind.CLARIFY


@dataclass(frozen=True)
class Rephrase:
    """Not sure, first miss: ask once more before handing off."""

    guesses: tuple[tuple[str, float], ...]
    text: str
    kind: DecisionKind = DecisionKind.REPHRASE


@dataclass(frozen=True)
class SmallTalk:
    intent: str
    text: str
    kind: DecisionKind = DecisionKind.SMALL_TALK


@dataclass(frozen=True)
class Handoff:
    reason: HandoffReason
    detail: str
    guesses: tuple[tuple[str, float], ...]
    text: str
    kind: DecisionKind = DecisionKind.HANDOFF


Decision = Answer | Clarify | Rephrase | SmallTalk | Handoff


@dataclass(frozen=True)
class Turn:
    """The decision and what the bot remembers afterwards."""

    decision: Decision
    memory: BotMemory = field(default_factory=BotMemory)


# --- language ------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def detect_locale(text: str, previous: str | None = None) -> str:
    """en, zh-Hans or zh-Hant from the message's script; a message without letters
    ("2", "!!!") keeps the conversation's language. Characters the two scripts share
    (你好) keep a conversation already in traditional Chinese there."""
    if _CJK.search(text):
        if _simplified(text) != text:
            return ZH_HANT
        return ZH_HANT if previous == ZH_HANT else ZH_HANS
    if _LATIN.search(text):
        return EN
    return previous or EN


def _simplified(text: str) -> str:
    converted: str = _t2s().convert(text)
    return converted


def _fold(text: str) -> str:
    return _simplified(unicodedata.normalize("NFKC", text).casefold()).strip()


# --- guards that never depend on the model -----------------------------------------------

_HUMAN_EN = re.compile(
    r"\b(human|agent|operator|representative|real person|live person|to a person|"
    r"someone real|real people|speak to someone|talk to someone|customer service rep)s?\b"
)
# Folded to simplified first, so 轉人工 / 真人客服 / 人工服務 match too.
_HUMAN_ZH = re.compile(r"人工(?!智能)|真人|客服人员|找人工|转接客服|找客服")

_FRUSTRATED_EN = re.compile(
    r"useless|not help(ing|ful)|unhelpful|doesn'?t help|you don'?t understand|"
    r"\bstupid\b|\bidiot|\bterrible\b|\bridiculous\b|waste of (my )?time|\bwtf\b|"
    r"\bdamn\b|\bsucks?\b|\bannoying\b|\bfed up\b"
)
_FRUSTRATED_ZH = re.compile(
    r"垃圾|没用|无用|废物|有病|气死|太差|答非所问|听不懂|不懂我|无语|什么破|搞什么|烦死"
)
_REPEATED_MARKS = re.compile(r"[!?]{3,}")


def asks_for_human(text: str) -> bool:
    folded = _fold(text)
    return bool(_HUMAN_EN.search(folded) or _HUMAN_ZH.search(folded))


def is_frustrated(text: str) -> bool:
    """Insults and complaints about the bot (English, Chinese), !!!/??? runs, or
    shouting (a message of several words written mostly in capitals)."""
    normal = unicodedata.normalize("NFKC", text)
    folded = _fold(text)
    if _FRUSTRATED_EN.search(folded) or _FRUSTRATED_ZH.search(folded):
        return True
    if _REPEATED_MARKS.search(normal):
        return True
    letters = [c for c in normal if c.isascii() and c.isalpha()]
    words = [w for w in normal.split() if any(c.isalpha() for c in w)]
    upper = sum(1 for c in letters if c.isupper())
    return len(letters) >= 8 and len(words) >= 2 and upper / len(letters) >= 0.8


# --- the customer's pick ----------------------------------------------------------------------

_ZH_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3}
_PICK_NUMBER = re.compile(
    r"^(?:#|no\.?|option|number|选项|选|第)?\s*([1-9一二两三])\s*(?:个|号|项)?\s*[.)。]?$"
)


def picked(text: str, pending: Sequence[Choice]) -> Choice | None:
    """The option the customer chose: its number, its text, or a button's payload."""
    if not pending:
        return None
    folded = _fold(text)
    if folded.startswith(CHOICE_PAYLOAD):
        topic = text.strip()[len(CHOICE_PAYLOAD) :]
        return next((c for c in pending if c.topic == topic), None)
    number = _PICK_NUMBER.match(folded)
    if number:
        raw = number[1]
        index = _ZH_NUMBERS.get(raw) or int(raw)
        return pending[index - 1] if index <= len(pending) else None
    stripped = folded.rstrip("?？。.! ")
    for choice in pending:
        title = _fold(choice.title).rstrip("?？。.! ")
        # A long title comes back cut short from a button that could not hold it all.
        if title == stripped or (len(stripped) >= BUTTON_TEXT and title.startswith(stripped)):
            return choice
    return None


# --- what the bot says ---------------------------------------------------------------------

_NEXT = {
    EN: "I'm passing you to a person; you'll get a reply here as soon as someone is free.",
    ZH_HANS: "正在为您转接人工客服，客服人员会尽快在这里回复您。",
    ZH_HANT: "正在為您轉接真人客服，客服人員會盡快在這裡回覆您。",
}
_WHY = {
    HandoffReason.CUSTOMER_ASKED: {EN: "Of course.", ZH_HANS: "好的。", ZH_HANT: "好的。"},
    HandoffReason.OUT_OF_SCOPE: {
        EN: "I don't have an answer for that.",
        ZH_HANS: "这个问题我暂时无法回答。",
        ZH_HANT: "這個問題我暫時無法回答。",
    },
    HandoffReason.SECOND_MISS: {
        EN: "Sorry, I still don't understand.",
        ZH_HANS: "抱歉，我还是没有理解。",
        ZH_HANT: "抱歉，我還是沒有理解。",
    },
    HandoffReason.FRUSTRATION: {
        EN: "I'm sorry this has been frustrating.",
        ZH_HANS: "很抱歉给您带来不便。",
        ZH_HANT: "很抱歉造成您的不便。",
    },
    HandoffReason.ENGINE_UNAVAILABLE: {
        EN: "I can't look that up right now.",
        ZH_HANS: "我现在无法查询。",
        ZH_HANT: "我現在無法查詢。",
    },
}
_CLARIFY = {
    EN: ("Did you mean one of these?", "Reply with the number, or write “agent” for a person."),
    ZH_HANS: ("您想问的是以下哪一个？", "请回复编号，或输入“人工”转接客服。"),
    ZH_HANT: ("您想問的是以下哪一個？", "請回覆編號，或輸入「人工」轉接客服。"),
}
_REPHRASE = {
    EN: "Sorry, I'm not sure I understood. Could you say it another way?",
    ZH_HANS: "抱歉，我不太确定您的意思，能换个说法吗？",
    ZH_HANT: "抱歉，我不太確定您的意思，能換個說法嗎？",
}
_SMALL_TALK = {
    GREETING: {
        EN: "Hello! Ask me anything about our shop, or write “agent” to reach a person.",
        ZH_HANS: "您好！有什么可以帮您？如需人工服务，请输入“人工”。",
        ZH_HANT: "您好！有什麼可以幫您？如需真人服務，請輸入「人工」。",
    },
    THANKS: {EN: "You're welcome!", ZH_HANS: "不客气！", ZH_HANT: "不客氣！"},
    GOODBYE: {
        EN: "Goodbye, have a nice day!",
        ZH_HANS: "再见，祝您愉快！",
        ZH_HANT: "再見，祝您愉快！",
    },
}


def handoff_text(reason: HandoffReason, locale: str) -> str:
    """What the customer is told: why (when it helps) and what happens next."""
    why = _WHY.get(reason, {}).get(locale, "")
    return f"{why} {_NEXT[locale]}".strip() if locale == EN else f"{why}{_NEXT[locale]}"


def clarify_text(choices: Sequence[Choice], locale: str) -> str:
    head, tail = _CLARIFY[locale]
    lines = [f"{n}. {c.title}" for n, c in enumerate(choices, 1)]
    return "\n".join([head, *lines, tail])


# --- the decision ----------------------------------------------------------------------------


def decide(
    prediction: Prediction,
    *,
    text: str,
    memory: BotMemory,
    customer: CustomerFacts,
    settings: BotSettings,
    articles: Mapping[str, Mapping[str, TrainingArticle]],
) -> Turn:
    """One bot turn for the customer's message ``text``."""
    locale = detect_locale(text, memory.locale)
    guesses = tuple(
        (label, round(conf, 4)) for label, conf in prediction.ranking if label in articles
    )

    def handoff(reason: HandoffReason, detail: str) -> Turn:
        decision = Handoff(reason, detail, guesses[:MAX_CHOICES], handoff_text(reason, locale))
        return Turn(decision, BotMemory(misses=0, locale=locale))

    def answer(topic: str, confidence: float) -> Turn:
        article = pick_variant(articles[topic], locale)
        decision = Answer(topic, article, confidence, article.answer)
        return Turn(decision, BotMemory(misses=0, locale=locale))

    for rule in settings.rules:
        if rule.matches(customer):
            return handoff(HandoffReason.RULE, rule.reason or f"{rule.field} is {rule.value}")
    if asks_for_human(text):
        return handoff(HandoffReason.CUSTOMER_ASKED, "asked for a person")
    choice = picked(text, memory.pending)
    if choice is not None and choice.topic in articles:
        return answer(choice.topic, choice.confidence)
    if prediction.fallback:
        return handoff(HandoffReason.ENGINE_UNAVAILABLE, prediction.reason)
    # The engine's built-in intents count only when it is fairly sure: a weak
    # "request_human" on "I want to buy a laptop" is out of scope, not a request.
    intent_sure = prediction.confidence >= settings.confidence / 2
    if prediction.label == REQUEST_HUMAN and intent_sure:
        return handoff(HandoffReason.CUSTOMER_ASKED, "asked for a person")
    if is_frustrated(text):
        return handoff(HandoffReason.FRUSTRATION, "the customer sounds frustrated")
    if prediction.label in _SMALL_TALK and intent_sure:
        talk = SmallTalk(prediction.label, _SMALL_TALK[prediction.label][locale])
        return Turn(talk, BotMemory(misses=memory.misses, locale=locale))

    top_topic, top = guesses[0] if guesses else ("", 0.0)
    runner_up = guesses[1][1] if len(guesses) > 1 else 0.0
    sure = top >= settings.confidence and top - runner_up >= settings.margin
    if sure and not prediction.is_oos and prediction.label == top_topic:
        return answer(top_topic, top)

    misses = memory.misses + 1
    close = [
        (label, conf)
        for label, conf in guesses[:MAX_CHOICES]
        if conf >= max(top - settings.clarify_gap, CLARIFY_FLOOR)
    ]
    together = sum(conf for _label, conf in close)
    if len(close) >= 2 and together >= settings.confidence:
        if misses >= 2:
            return handoff(HandoffReason.SECOND_MISS, "still unsure after offering choices")
        choices = tuple(
            Choice(label, pick_variant(articles[label], locale).question, conf)
            for label, conf in close
        )
        decision: Decision = Clarify(choices, clarify_text(choices, locale))
        return Turn(decision, BotMemory(misses=misses, locale=locale, pending=choices))
    if top < settings.confidence / 2:
        return handoff(HandoffReason.OUT_OF_SCOPE, f"best guess {top:.2f}")
    if misses >= 2:
        return handoff(HandoffReason.SECOND_MISS, f"best guess {top:.2f}, twice unsure")
    return Turn(Rephrase(guesses[:MAX_CHOICES], _REPHRASE[locale]), BotMemory(misses, locale))
