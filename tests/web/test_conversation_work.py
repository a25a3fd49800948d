"""Working a conversation in the inbox: canned replies, the cross-channel history with
the bot's explanations, internal notes with @mentions, agent assist, and collision
detection (who else is viewing), on SQLite and on PostgreSQL with Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import func, select, update

from bot.models import BotReply
from channels.base import InboundMessage
from conversations.assist_models import Mention
from conversations.models import AuthorKind, Conversation, Message
from conversations.service import do_reply
from knowledge_base.service import do_create_article
from routing.models import Queue, QueueMember
from switchboard.accounts import do_create_api_token
from switchboard.adapters import StaticAdapters
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import AppClient, Backend, ClientFactory, create_user, login
from tests.customers.support import email_from, email_inbox, intake, webchat_inbox
from tests.security.support import multipart_file, receive, tiny_png
from tests.tickets.support import open_ticket
from tickets.models import Ticket
from web import collision
from web.collision import CUSTOMER_SEES_TYPING, TypingRelay

API = "/api/v1"


async def _customer_on_two_channels(db: Database) -> tuple[int, int, int]:
    """Ana writes by email, then in the web chat, then by email again (one customer:
    both channels vouch for her address). Returns (customer, email conv, chat conv)."""
    mail_inbox = await email_inbox(db)
    chat_inbox = (await webchat_inbox(db)).id
    first = await intake(
        db, email_from(mail_inbox, "ana@example.com", verified=True, name="Ana Lima")
    )
    chat = await intake(
        db,
        InboundMessage(
            channel="webchat",
            inbox_id=chat_inbox,
            sender_id="v_ana",
            external_id="v_ana:1",
            thread_key="v_ana",
            text="hello from the chat",
            sender_name="Ana Lima",
            verified_email="ana@example.com",
        ),
    )
    again = email_from(mail_inbox, "ana@example.com", verified=True, name="Ana Lima", n=2)
    again = InboundMessage(**{**again.__dict__, "thread_key": "mail-thread-ana@example.com-1"})
    await intake(db, again)
    assert first.customer_id is not None and first.customer_id == chat.customer_id
    return first.customer_id, first.conversation_id, chat.conversation_id


async def _teammate(
    db: Database,
    client: AppClient,
    make_client: ClientFactory,
    backend: Backend,
    email: str,
    name: str,
) -> tuple[AppClient, dict[str, str], int]:
    """Another agent's API client: on another app instance when Redis joins instances
    (PostgreSQL backend), else on the same one; an API token, so no cookie is shared."""
    user_id = await create_user(db, email, "agent", name)

    async def token(session: Any) -> str:
        user = await session.get(User, user_id)
        return await do_create_api_token(session, user, "test")

    bearer = await db.run(token)
    http = await make_client() if backend.name == "postgres" else client
    return http, {"Authorization": f"Bearer {bearer}"}, user_id


async def test_canned_replies_admins_write_agents_read_and_insert_filled(
    client: AppClient, make_client: ClientFactory, db: Database
) -> None:
    await create_user(db, "root@example.com", "admin", "Root")
    await create_user(db, "kim@example.com", "agent", "Kim Park")
    _, email_conv, _ = await _customer_on_two_channels(db)
    anonymous = await client.get(f"{API}/canned-replies")
    assert anonymous.status == 401

    admin_csrf = await login(client, "root@example.com")
    h = {"X-CSRF-Token": admin_csrf}
    body = (
        "Hi {{customer.first_name}}, {{agent.name}} here. {{customer.secret}} {{ customer.email }}"
    )
    created = await client.post(
        f"{API}/canned-replies",
        json={"shortcut": "Hello", "title": "Greeting", "body": body},
        headers=h,
    )
    assert created.status == 201, await created.text()
    reply = (await created.json())["canned_reply"]
    assert reply["shortcut"] == "hello"
    again = await client.post(
        f"{API}/canned-replies", json={"shortcut": "hello", "title": "x", "body": "y"}, headers=h
    )
    assert again.status == 409
    for bad in (
        {"shortcut": "has space", "title": "x", "body": "y"},
        {"shortcut": "ok", "title": "", "body": "y"},
        {"shortcut": "ok", "title": "x", "body": "y", "created_by_user_id": 1},
    ):
        assert (await client.post(f"{API}/canned-replies", json=bad, headers=h)).status == 400
    changed = await client.patch(
        f"{API}/canned-replies/{reply['id']}", json={"title": "Greeting (short)"}, headers=h
    )
    assert (await changed.json())["canned_reply"]["title"] == "Greeting (short)"

    agent = await make_client()
    agent_csrf = await login(agent, "kim@example.com")
    listed = await (await agent.get(f"{API}/canned-replies")).json()
    assert [r["shortcut"] for r in listed["canned_replies"]] == ["hello"]
    refused = await agent.post(
        f"{API}/canned-replies",
        json={"shortcut": "mine", "title": "x", "body": "y"},
        headers={"X-CSRF-Token": agent_csrf},
    )
    assert refused.status == 403
    assert (
        await agent.delete(
            f"{API}/canned-replies/{reply['id']}", headers={"X-CSRF-Token": agent_csrf}
        )
    ).status == 403

    filled = await agent.get(
        f"{API}/canned-replies/{reply['id']}/render?conversation_id={email_conv}"
    )
    assert filled.status == 200
    text = (await filled.json())["text"]
    # Known names filled from the customer record and the agent; an unknown one stays visible.
    assert text == "Hi Ana, Kim Park here. {{customer.secret}} ana@example.com"
    missing = await agent.get(f"{API}/canned-replies/{reply['id']}/render?conversation_id=999999")
    assert missing.status == 404

    deleted = await client.delete(f"{API}/canned-replies/{reply['id']}", headers=h)
    assert deleted.status == 204
    assert (await (await agent.get(f"{API}/canned-replies")).json())["canned_replies"] == []


async def test_history_shows_every_channel_in_order_with_bot_answers_explained(
    client: AppClient, db: Database
) -> None:
    await create_user(db, "kim@example.com", "agent", "Kim")
    customer_id, email_conv, chat_conv = await _customer_on_two_channels(db)

    async def bot_answer(session: Any) -> None:
        article = await do_create_article(
            session,
            {
                "key": "reset",
                "locale": "en",
                "question": "How do I reset my password?",
                "answer_markdown": "Use the link.",
            },
            author_user_id=None,
            publish=True,
        )
        message = await do_reply(
            session, conversation_id=chat_conv, text="Use the link.", author_kind=AuthorKind.BOT
        )
        session.add(
            BotReply(
                message_id=message.id,
                conversation_id=chat_conv,
                inbox_id=message.inbox_id,
                kind="answer",
                topic="reset",
                article_id=article.id,
                article_version=1,
                confidence=0.87,
                guesses=[],
            )
        )

    await db.run(bot_answer)
    await login(client, "kim@example.com")
    page = await (await client.get(f"{API}/conversations/{email_conv}/history")).json()
    assert page["customer_id"] == customer_id and page["next_cursor"] is None
    shown = [(m["channel"], m["text"]) for m in page["messages"]]
    assert shown == [
        ("email", "mail 1 from ana@example.com"),
        ("webchat", "hello from the chat"),
        ("email", "mail 2 from ana@example.com"),
        ("webchat", "Use the link."),
    ]
    bot = page["messages"][-1]["bot"]
    assert bot["article_title"] == "How do I reset my password?" and bot["confidence"] == 0.87

    first = await (await client.get(f"{API}/conversations/{chat_conv}/history?limit=3")).json()
    assert first["messages"][0]["text"] == "hello from the chat"
    older = await (
        await client.get(
            f"{API}/conversations/{chat_conv}/history?limit=3&before={first['next_cursor']}"
        )
    ).json()
    assert [m["text"] for m in older["messages"]] == ["mail 1 from ana@example.com"]
    assert older["next_cursor"] is None
    bad = await client.get(f"{API}/conversations/{chat_conv}/history?before=nonsense")
    assert bad.status == 400

    assist = await (await client.get(f"{API}/conversations/{chat_conv}/assist")).json()
    assert assist["question"] == "hello from the chat"
    assert assist["suggestions"] == []  # a match on filler words is no suggestion
    mail_assist = await (await client.get(f"{API}/conversations/{email_conv}/assist")).json()
    assert mail_assist["question"] == "mail 2 from ana@example.com"


async def test_history_pages_through_every_conversation_in_time_order_with_ties(
    client: AppClient, db: Database
) -> None:
    """Paging merges the customer's conversations by (time, id) with no message lost or
    shown twice, however the times tie (PostgreSQL reads each conversation's newest
    through the 0016 index; SQLite sorts)."""
    await create_user(db, "kim@example.com", "agent", "Kim")
    customer_id, email_conv, chat_conv = await _customer_on_two_channels(db)
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    async def more_and_shuffled_times(session: Any) -> list[int]:
        for n in range(8):
            for conv in (email_conv, chat_conv):
                await do_reply(
                    session, conversation_id=conv, text=f"r{n}", author_kind=AuthorKind.BOT
                )
        ids = (
            await session.execute(
                select(Message.id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.customer_id == customer_id)
            )
        ).scalars()
        order = []
        for message_id in ids:
            # Few distinct times, so many ties, not in id order across conversations.
            when = base + timedelta(seconds=(message_id * 7) % 5)
            await session.execute(
                update(Message).where(Message.id == message_id).values(created_at=when)
            )
            order.append((when, message_id))
        return [message_id for _, message_id in sorted(order)]

    expected = await db.run(more_and_shuffled_times)
    assert len(expected) == 19  # three conversations: two by email, one in the chat
    await login(client, "kim@example.com")
    seen: list[int] = []
    url = f"{API}/conversations/{chat_conv}/history?limit=3"
    pages = 0
    while True:
        page = await (await client.get(url)).json()
        seen = [m["id"] for m in page["messages"]] + seen
        pages += 1
        if page["next_cursor"] is None:
            break
        url = f"{API}/conversations/{chat_conv}/history?limit=3&before={page['next_cursor']}"
    assert seen == expected and pages == 7


async def test_agent_assist_offers_the_published_answer_for_the_latest_message(
    client: AppClient, db: Database
) -> None:
    await create_user(db, "kim@example.com", "agent", "Kim")
    chat_inbox = (await webchat_inbox(db)).id

    async def arrange(session: Any) -> None:
        await do_create_article(
            session,
            {
                "key": "reset",
                "locale": "en",
                "question": "How do I reset my password?",
                "answer_markdown": "Open **Settings** and choose *Reset password*.",
            },
            author_user_id=None,
            publish=True,
        )
        await do_create_article(
            session,
            {
                "key": "draft",
                "locale": "en",
                "question": "Password reset draft",
                "answer_markdown": "not yet",
            },
            author_user_id=None,
        )

    await db.run(arrange)
    found = await intake(
        db,
        InboundMessage(
            channel="webchat",
            inbox_id=chat_inbox,
            sender_id="v_1",
            external_id="v_1:1",
            thread_key="v_1",
            text="I forgot my password, how to reset it?",
        ),
    )
    await login(client, "kim@example.com")
    assist = await (await client.get(f"{API}/conversations/{found.conversation_id}/assist")).json()
    assert [s["question"] for s in assist["suggestions"]] == ["How do I reset my password?"]
    assert assist["suggestions"][0]["answer"] == "Open Settings and choose Reset password."


async def test_a_note_mentioning_a_teammate_notifies_them_live_and_never_the_customer(
    client: AppClient, make_client: ClientFactory, db: Database, backend: Backend
) -> None:
    await create_user(db, "kim@example.com", "agent", "Kim")
    li, li_auth, li_id = await _teammate(db, client, make_client, backend, "li@example.com", "Li")
    _, email_conv, _ = await _customer_on_two_channels(db)
    kim_csrf = await login(client, "kim@example.com")
    li_socket = await li.ws_connect("/inbox/ws", headers=li_auth)
    await li_socket.send_json({"type": "ping"})
    await receive(li_socket, "pong")

    h = {"X-CSRF-Token": kim_csrf}
    url = f"{API}/conversations/{email_conv}/notes"
    assert (
        await client.post(url, json={"text": "x", "mentions": [999999]}, headers=h)
    ).status == 400
    assert (await client.post(url, json={"text": "x", "mentions": "Li"}, headers=h)).status == 400
    async with db.reading() as s:
        assert (await s.execute(select(func.count()).select_from(Mention))).scalar_one() == 0

    posted = await client.post(
        url, json={"text": "@Li can you check the refund?", "mentions": [li_id]}, headers=h
    )
    assert posted.status == 201, await posted.text()
    note = (await posted.json())["message"]
    assert note["private"] is True and note["delivery_status"] == "not_sent"
    heard = await receive(li_socket, "mention.created")
    assert heard["data"]["conversation_id"] == email_conv
    assert heard["data"]["author_name"] == "Kim"
    assert heard["data"]["excerpt"] == "@Li can you check the refund?"

    mine = await (await li.get(f"{API}/mentions?unread=1", headers=li_auth)).json()
    assert [m["message"]["id"] for m in mine["mentions"]] == [note["id"]]
    read = await li.post(
        f"{API}/mentions/read", json={"conversation_id": email_conv}, headers=li_auth
    )
    assert (await read.json())["marked"] == 1
    again = await (await li.get(f"{API}/mentions?unread=1", headers=li_auth)).json()
    assert again["mentions"] == []
    teammates = await (await client.get(f"{API}/teammates")).json()
    assert {t["name"] for t in teammates["teammates"]} == {"Kim", "Li"}
    await li_socket.close()


async def test_who_else_is_viewing_a_conversation_across_processes(
    client: AppClient, make_client: ClientFactory, db: Database, backend: Backend
) -> None:
    """Kim opens a conversation, Li opens it (on another process when Redis joins them):
    each sees the other; Li's page closing tells Kim at once."""
    await create_user(db, "kim@example.com", "agent", "Kim")
    li_http, li_auth, _ = await _teammate(db, client, make_client, backend, "li@example.com", "Li")
    _, email_conv, chat_conv = await _customer_on_two_channels(db)
    await login(client, "kim@example.com")
    kim = await client.ws_connect("/inbox/ws")
    await kim.send_json({"type": "viewing", "conversation_id": email_conv, "hello": True})
    # Kim's other tab shows another conversation: presence in this one is not its business.
    elsewhere = await client.ws_connect("/inbox/ws")
    await elsewhere.send_json({"type": "viewing", "conversation_id": chat_conv})
    li = await li_http.ws_connect("/inbox/ws", headers=li_auth)
    for socket in (li, kim, elsewhere):
        await socket.send_json({"type": "ping"})
        await receive(socket, "pong")

    await li.send_json({"type": "viewing", "conversation_id": email_conv, "hello": True})
    seen = await receive(kim, "conversation.presence")
    while seen["data"]["name"] != "Li":
        seen = await receive(kim, "conversation.presence")
    assert seen["data"]["state"] == "viewing" and seen["data"]["hello"] is True
    # Kim's page answers the hello; Li learns Kim is there.
    await kim.send_json({"type": "viewing", "conversation_id": email_conv})
    answer = await receive(li, "conversation.presence")
    while answer["data"]["name"] != "Kim":
        answer = await receive(li, "conversation.presence")
    assert answer["data"]["state"] == "viewing"
    await elsewhere.send_json({"type": "ping"})
    while (frame := await elsewhere.receive_json(timeout=5))["type"] != "pong":
        assert frame["type"] != "conversation.presence", frame
    await elsewhere.close()

    await li.close()
    gone = await receive(kim, "conversation.presence")
    while gone["data"]["name"] != "Li":
        gone = await receive(kim, "conversation.presence")
    assert gone["data"]["state"] == "left"

    await kim.send_json({"type": "viewing", "conversation_id": 999999})
    assert (await receive(kim, "error"))["code"] == "not_found"
    await kim.close()


async def test_a_teammate_outside_the_queue_can_be_neither_mentioned_nor_seen_viewing(
    client: AppClient, make_client: ClientFactory, db: Database, backend: Backend
) -> None:
    """The conversation's ticket sits in a queue Kim belongs to and Li does not: a note
    naming Li is refused whole (its text would reach someone who cannot open it), and
    Li's page cannot announce itself there."""
    kim_id = await create_user(db, "kim@example.com", "agent", "Kim")
    li, li_auth, li_id = await _teammate(db, client, make_client, backend, "li@example.com", "Li")
    _, email_conv, _ = await _customer_on_two_channels(db)
    ticket = await open_ticket(db, email_conv)

    async def queue_it(session: Any) -> None:
        queue = Queue(name="billing")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=kim_id))
        await session.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(queue_id=queue.id)
        )

    await db.run(queue_it)
    csrf = await login(client, "kim@example.com")
    refused = await client.post(
        f"{API}/conversations/{email_conv}/notes",
        json={"text": "@Li look", "mentions": [li_id]},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status == 400
    assert (await refused.json())["error"]["code"] == "mention_not_visible"
    async with db.reading() as s:
        assert (await s.execute(select(func.count()).select_from(Mention))).scalar_one() == 0
    history = await li.get(f"{API}/conversations/{email_conv}/history", headers=li_auth)
    assert history.status == 404

    socket = await li.ws_connect("/inbox/ws", headers=li_auth)
    await socket.send_json({"type": "viewing", "conversation_id": email_conv, "hello": True})
    assert (await receive(socket, "error"))["code"] == "not_found"
    await socket.close()


async def test_every_conversation_work_route_is_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get(f"{API}/openapi.json")).json()
    for path, methods in {
        "/conversations/{id}/history": {"get"},
        "/conversations/{id}/assist": {"get"},
        "/conversations/{id}/notes": {"post"},
        "/mentions": {"get"},
        "/mentions/read": {"post"},
        "/teammates": {"get"},
        "/canned-replies": {"get", "post"},
        "/canned-replies/{id}": {"get", "patch", "delete"},
        "/canned-replies/{id}/render": {"get"},
    }.items():
        assert methods <= set(document["paths"][path]), path


async def test_a_note_with_an_image_shows_it_in_the_history_served_as_a_download(
    client: AppClient, db: Database
) -> None:
    await create_user(db, "kim@example.com", "agent", "Kim")
    _, email_conv, _ = await _customer_on_two_channels(db)
    csrf = await login(client, "kim@example.com")
    h = {"X-CSRF-Token": csrf}
    conversation = await (await client.get(f"{API}/conversations/{email_conv}")).json()
    inbox_id = conversation["conversation"]["inbox_id"]
    body, headers = multipart_file(
        tiny_png(), disposition='form-data; name="file"; filename="<b>x.png"'
    )
    uploaded = await client.post(
        f"{API}/uploads?inbox_id={inbox_id}", data=body, headers={**headers, **h}
    )
    assert uploaded.status == 201, await uploaded.text()
    attachment_id = (await uploaded.json())["attachment_id"]
    posted = await client.post(
        f"{API}/conversations/{email_conv}/notes",
        json={"text": "", "attachments": [attachment_id]},
        headers=h,
    )
    assert posted.status == 201, await posted.text()
    page = await (await client.get(f"{API}/conversations/{email_conv}/history")).json()
    shown = page["messages"][-1]
    assert shown["private"] is True and shown["author_name"] == "Kim"
    assert [(a["id"], a["content_type"]) for a in shown["attachments"]] == [
        (attachment_id, "image/png")
    ]
    served = await client.get(f"{API}/attachments/{attachment_id}")
    assert served.status == 200
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"


class _ShowsTyping:
    """An adapter that records typing requests; `stall` makes each one hang."""

    def __init__(self, stall: bool = False) -> None:
        self.shown: list[str] = []
        self.stall = stall

    async def send_typing(self, thread_key: str) -> bool:
        self.shown.append(thread_key)
        if self.stall:
            await asyncio.Event().wait()
        return True


def _conversation(channel: str, thread_key: str = "chat:42") -> Conversation:
    return Conversation(id=1, inbox_id=1, customer_id=1, channel=channel, thread_key=thread_key)


async def test_typing_is_relayed_only_where_the_customer_can_see_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Telegram's adapter is asked; Slack's and email's never are (they have no typing for
    a bot), and web chat needs no adapter (the widget hears the Typing event)."""
    adapters: dict[str, Any] = {
        kind: _ShowsTyping() for kind in ("telegram", "slack", "email", "webchat")
    }
    relay = TypingRelay(StaticAdapters(adapters))
    for kind in adapters:
        relay.agent_typing(_conversation(kind))
    await relay.aclose()
    assert {k: a.shown for k, a in adapters.items()} == {
        "telegram": ["chat:42"],
        "slack": [],
        "email": [],
        "webchat": [],
    }
    assert {"webchat", "telegram"} == CUSTOMER_SEES_TYPING

    # A channel that hangs costs a bounded number of requests in flight, each dropped
    # after TYPING_TIMEOUT, and never holds up the caller.
    monkeypatch.setattr(collision, "TYPING_TIMEOUT", 0.05)
    stuck = _ShowsTyping(stall=True)
    relay = TypingRelay(StaticAdapters({"telegram": cast(Any, stuck)}))
    for _ in range(10):
        relay.agent_typing(_conversation("telegram"))
    await relay.aclose()
    assert len(stuck.shown) == collision.MAX_TYPING_IN_FLIGHT
