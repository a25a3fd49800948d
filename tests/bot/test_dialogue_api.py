"""The bot's REST routes through the real app: hand back, the conversation view with
the hand-off reason, inbox thresholds and rules, missed questions — with access checks
and clear 4xx answers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.models import BotInboxSettings, BotMode
from bot.policy import HandoffReason
from switchboard.tx import Database
from tests.bot.dialogue_support import Chat, chat_with, demo_bot, webchat_with_bot
from tests.conftest import AppClient, ClientFactory
from tests.security.support import bearer, staff_token, use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    # The test's own worker takes the bot's turns, so the chat reads like the chat.
    return await make_client(run_workers=False)


@pytest.fixture
async def chat(db: Database, client: AppClient) -> Chat:
    # `client` first: the app creates the default inboxes this chat writes to.
    inbox_id = await webchat_with_bot(db)
    return chat_with(db, inbox_id, await demo_bot(db))


async def test_agent_sees_the_handoff_and_hands_back(
    db: Database, client: AppClient, chat: Chat
) -> None:
    _agent_id, token = await staff_token(db, "agent@example.com", "agent")
    await chat.ask("转人工")
    found = await client.get(f"/api/v1/conversations/{chat.conversation_id}", headers=bearer(token))
    assert found.status == 200
    bot = (await found.json())["conversation"]["bot"]
    assert bot["enabled"] is True
    assert bot["mode"] == "human"
    assert bot["handoff"]["reason"] == HandoffReason.CUSTOMER_ASKED

    explained = await client.get(
        f"/api/v1/conversations/{chat.conversation_id}/bot", headers=bearer(token)
    )
    replies = (await explained.json())["bot"]["replies"]
    assert [r["kind"] for r in replies] == ["handoff"]

    back = await client.post(
        f"/api/v1/conversations/{chat.conversation_id}/bot/hand-back", headers=bearer(token)
    )
    assert back.status == 200, await back.text()
    assert (await back.json())["bot"]["mode"] == "bot"
    again = await client.post(
        f"/api/v1/conversations/{chat.conversation_id}/bot/hand-back", headers=bearer(token)
    )
    assert again.status == 409
    assert "already" in (await again.json())["error"]["message"]

    # the bot answers the next message, and only that one
    said = await chat.ask("how much is shipping")
    assert said.explanation.topic == "shipping_cost"
    assert (await chat.state()).mode == BotMode.BOT
    assert len(await chat.bot_messages()) == 2


async def test_hand_back_needs_a_staff_user_and_a_real_conversation(
    db: Database, client: AppClient, chat: Chat
) -> None:
    _id, token = await staff_token(db, "agent@example.com", "agent")
    await chat.ask("转人工")
    path = f"/api/v1/conversations/{chat.conversation_id}/bot/hand-back"
    assert (await client.post(path)).status == 401
    assert (
        await client.post("/api/v1/conversations/999999/bot/hand-back", headers=bearer(token))
    ).status == 404
    assert (
        await client.post("/api/v1/conversations/abc/bot/hand-back", headers=bearer(token))
    ).status == 404
    assert (await chat.state()).mode == BotMode.HUMAN


async def test_admins_change_thresholds_and_rules_others_may_not(
    db: Database, client: AppClient, chat: Chat
) -> None:
    _a, admin = await staff_token(db, "admin@example.com", "admin")
    _g, agent = await staff_token(db, "agent@example.com", "agent")
    path = f"/api/v1/inboxes/{chat.inbox_id}/bot"
    body = {
        "confidence": 0.7,
        "rules": [{"field": "tier", "value": "vip", "reason": "VIPs talk to people"}],
    }
    denied = await client.patch(path, json=body, headers=bearer(agent))
    assert denied.status == 403
    assert (await client.get(path, headers=bearer(agent))).status == 403

    changed = await client.patch(path, json=body, headers=bearer(admin))
    assert changed.status == 200, await changed.text()
    settings = (await changed.json())["settings"]
    assert settings["confidence"] == 0.7
    assert settings["margin"] == 0.2  # untouched fields keep their value
    assert settings["rules"][0]["field"] == "tier"
    read = await (await client.get(path, headers=bearer(admin))).json()
    assert read["settings"] == settings


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"confidence": 1.5}, "confidence must be a number from 0 to 1"),
        ({"margin": "high"}, "margin must be a number from 0 to 1"),
        ({"clarify_gap": True}, "clarify_gap must be a number from 0 to 1"),
        ({"rules": "vip"}, "rules must be a list"),
        ({"rules": [{"field": "password", "value": "x"}]}, "rule 1: field must be one of"),
        ({"rules": [{"field": "tier", "value": ""}]}, "rule 1: value must be"),
        ({"bot_enabled": "yes"}, "bot_enabled must be true or false"),
    ],
)
async def test_bad_settings_are_refused_and_nothing_is_stored(
    db: Database, client: AppClient, chat: Chat, body: dict[str, object], message: str
) -> None:
    _a, admin = await staff_token(db, "admin@example.com", "admin")
    refused = await client.patch(
        f"/api/v1/inboxes/{chat.inbox_id}/bot",
        json={"confidence": 0.9, **body},
        headers=bearer(admin),
    )
    assert refused.status == 400
    assert (await refused.json())["error"]["message"].startswith(message)
    async with db.reading() as session:
        assert (await session.execute(select(BotInboxSettings))).first() is None


async def test_missed_questions_are_listed_for_admins_and_can_be_dismissed(
    db: Database, client: AppClient, chat: Chat
) -> None:
    _a, admin = await staff_token(db, "admin@example.com", "admin")
    _g, agent = await staff_token(db, "agent@example.com", "agent")
    await chat.ask("what is the weather in paris")
    answered = chat_with(db, chat.inbox_id, chat.worker.runtime)
    await answered.ask("how much is shipping")

    assert (await client.get("/api/v1/bot/missed", headers=bearer(agent))).status == 403
    listed = await (await client.get("/api/v1/bot/missed", headers=bearer(admin))).json()
    assert [m["question"] for m in listed["missed"]] == ["what is the weather in paris"]
    missed = listed["missed"][0]
    assert missed["reason"] == HandoffReason.OUT_OF_SCOPE
    assert isinstance(missed["guesses"], list)

    path = f"/api/v1/bot/missed/{missed['id']}/dismiss"
    assert (await client.post(path, headers=bearer(agent))).status == 403
    assert (await client.post(path, headers=bearer(admin))).status == 200
    after = await (await client.get("/api/v1/bot/missed", headers=bearer(admin))).json()
    assert after["missed"] == []
    gone = await client.post("/api/v1/bot/missed/123456/dismiss", headers=bearer(admin))
    assert gone.status == 404
    bad = await client.get("/api/v1/bot/missed?limit=0", headers=bearer(admin))
    assert bad.status == 400


async def test_every_bot_route_is_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    served: dict[str, set[str]] = {}
    for route in client.app.router.routes():
        path = (route.resource.canonical if route.resource else "").removeprefix("/api/v1")
        if ("/bot" in path) and route.method != "HEAD":
            served.setdefault(path, set()).add(route.method.lower())
    described = {p: set(ops) for p, ops in document["paths"].items() if "/bot" in p}
    assert served == described


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/conversations/1/bot"),
        ("POST", "/api/v1/conversations/1/bot/hand-back"),
        ("GET", "/api/v1/inboxes/1/bot"),
        ("PATCH", "/api/v1/inboxes/1/bot"),
        ("GET", "/api/v1/bot/missed"),
        ("POST", "/api/v1/bot/missed/1/dismiss"),
    ],
)
async def test_every_bot_route_refuses_anonymous_callers(
    client: AppClient, chat: Chat, method: str, path: str
) -> None:
    await chat.ask("转人工")
    answer = await client.request(method, path, json={"confidence": 0.1})
    assert answer.status == 401
    assert (await chat.state()).mode == BotMode.HUMAN


async def test_a_conversation_in_an_inbox_without_the_bot_says_so(
    db: Database, client: AppClient
) -> None:
    from tests.security.support import start_conversation

    _id, token = await staff_token(db, "agent@example.com", "agent")
    conversation_id = await start_conversation(db)
    found = await client.get(f"/api/v1/conversations/{conversation_id}", headers=bearer(token))
    bot = (await found.json())["conversation"]["bot"]
    assert (bot["enabled"], bot["handoff"]) == (False, None)
    back = await client.post(
        f"/api/v1/conversations/{conversation_id}/bot/hand-back", headers=bearer(token)
    )
    assert back.status == 409
    assert (await back.json())["error"]["message"] == "the bot is off in this conversation's inbox"
