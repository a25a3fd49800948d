"""Drafts of published articles: an admin works on a draft while customers, the bot and
KB search keep the published text; publishing the draft makes it live, discarding it
leaves the live article as it was. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from bot.models import BotReply
from bot.training import change_token, fingerprint
from channels.base import InboundMessage
from conversations.models import AuthorKind
from conversations.service import do_reply
from knowledge_base.io import apply_rows, parse
from knowledge_base.search import search_articles
from knowledge_base.service import published_training_set
from switchboard.audit import search_entries
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.customers.support import intake, webchat_inbox
from tests.knowledge_base.support import HOURS, bearer, staff_token

API = "/api/v1/kb/articles"
LIVE = "We are open **9:00-18:00**, Monday to Friday."
DRAFT = "From June we are open **8:00-20:00** every day."


async def _published(client: AppClient, admin: dict[str, str]) -> dict[str, Any]:
    created = await client.post(API, json=HOURS, headers=admin)
    assert created.status == 201, await created.text()
    article_id = (await created.json())["article"]["id"]
    published = await client.post(f"{API}/{article_id}/publish", headers=admin)
    article: dict[str, Any] = (await published.json())["article"]
    assert article["status"] == "published" and article["version"] == 2
    return article


async def _bot_sees(db: Database) -> tuple[str, str, list[int], tuple[Any, ...]]:
    async with db.reading() as session:
        training = [a for a in await published_training_set(session) if a.key == HOURS["key"]]
        hits = await search_articles(session, "june every day")
        token = await change_token(session)
    return training[0].answer, fingerprint(training, "builtin"), [h.article_id for h in hits], token


async def test_a_draft_reaches_nobody_until_published(client: AppClient, db: Database) -> None:
    admin_id, admin_token = await staff_token(db, "ada@example.com", "admin")
    _agent_id, agent_token = await staff_token(db, "alex@example.com", "agent")
    admin, agent = bearer(admin_token), bearer(agent_token)
    article = await _published(client, admin)
    path = f"{API}/{article['id']}"
    before = await _bot_sees(db)
    assert before[0] == LIVE and before[2] == []

    saved = await client.patch(
        path,
        json={"answer_markdown": DRAFT, "as_draft": True, "change_note": "summer"},
        headers=admin,
    )
    assert saved.status == 200, await saved.text()
    shown = (await saved.json())["article"]
    # the live fields are untouched; the draft sits beside them
    assert shown["answer_markdown"] == LIVE and shown["version"] == 2
    assert shown["draft"]["answer_markdown"] == DRAFT
    assert "<strong>8:00-20:00</strong>" in shown["draft"]["answer_html"]
    assert shown["draft"]["version"] == 3
    assert shown["draft"]["author_user_id"] == admin_id
    assert shown["draft"]["question"] == HOURS["question"]  # unchanged fields kept
    # a second draft save builds on the first
    again = await client.patch(
        path, json={"question": "When are you open this summer?", "as_draft": True},
        headers=admin,
    )  # fmt: skip
    draft = (await again.json())["article"]["draft"]
    assert (draft["question"], draft["answer_markdown"], draft["version"]) == (
        "When are you open this summer?", DRAFT, 4,
    )  # fmt: skip
    # nothing reached the bot, its change token (no retrain), or KB search
    assert await _bot_sees(db) == before
    for query in ("june", "summer"):
        listed = await client.get(f"{API}?q={query}", headers=agent)
        assert (await listed.json())["articles"] == []
    # ... nor a reader of the article, who sees live and draft apart
    read = (await (await client.get(path, headers=agent)).json())["article"]
    assert read["answer_markdown"] == LIVE and read["draft"]["version"] == 4

    # every save is a version, draft saves marked, with who and when
    versions = (await (await client.get(f"{path}/versions", headers=agent)).json())["versions"]
    assert [(v["version"], v["is_draft"], v["change_note"]) for v in versions] == [
        (1, False, "created"),
        (2, False, "published"),
        (3, True, "summer"),
        (4, True, "draft saved"),
    ]
    assert versions[2]["answer_markdown"] == DRAFT and versions[2]["author_user_id"] == admin_id
    # the diff between live and draft
    diff = await client.get(f"{API}/{article['id']}/diff?from=2&to=4", headers=admin)
    fields = {f["field"] for f in (await diff.json())["fields"]}
    assert fields == {"question", "answer_markdown"}

    published = await client.post(f"{path}/publish", headers=admin)
    live = (await published.json())["article"]
    assert live["draft"] is None and live["version"] == 5
    assert (live["question"], live["answer_markdown"]) == ("When are you open this summer?", DRAFT)
    answer, print_, hits, _token = await _bot_sees(db)
    assert answer == DRAFT and print_ != before[1] and hits == [article["id"]]
    versions = (await (await client.get(f"{path}/versions", headers=agent)).json())["versions"]
    assert versions[-1]["change_note"] == "published the draft (version 4)"
    assert versions[-1]["is_draft"] is False

    async with db.reading() as session:
        entries = await search_entries(session, action="kb.article.", limit=50)
    actions = [e.action for e in entries]
    assert actions.count("kb.article.draft_saved") == 2
    published_entry = next(e for e in entries if e.action == "kb.article.published"
                           and e.details.get("draft_version") == 4)  # fmt: skip
    assert published_entry.details["version"] == 5


async def test_discarding_a_draft_keeps_the_live_article(client: AppClient, db: Database) -> None:
    _admin_id, admin_token = await staff_token(db, "ada@example.com", "admin")
    _agent_id, agent_token = await staff_token(db, "alex@example.com", "agent")
    admin, agent = bearer(admin_token), bearer(agent_token)
    article = await _published(client, admin)
    path = f"{API}/{article['id']}"
    await client.patch(path, json={"answer_markdown": DRAFT, "as_draft": True}, headers=admin)

    # only admins discard; a reader gets 403 and the draft stays
    refused = await client.delete(f"{path}/draft", headers=agent)
    assert refused.status == 403
    discarded = await client.delete(f"{path}/draft", headers=admin)
    assert discarded.status == 200, await discarded.text()
    shown = (await discarded.json())["article"]
    assert shown["draft"] is None and shown["answer_markdown"] == LIVE and shown["version"] == 2
    # nothing left to discard, and no such article: 404
    assert (await client.delete(f"{path}/draft", headers=admin)).status == 404
    assert (await client.delete(f"{API}/999999/draft", headers=admin)).status == 404
    # publishing now republishes the live text; the discarded draft stays in the history
    again = await (await client.post(f"{path}/publish", headers=admin)).json()
    assert again["article"]["answer_markdown"] == LIVE
    versions = (await (await client.get(f"{path}/versions", headers=agent)).json())["versions"]
    assert [v["is_draft"] for v in versions] == [False, False, True, False]
    async with db.reading() as session:
        entries = await search_entries(session, action="kb.article.draft_discarded", limit=5)
    assert [e.details["draft_version"] for e in entries] == [3]


async def test_draft_rules_and_bad_input(client: AppClient, db: Database) -> None:
    _admin_id, admin_token = await staff_token(db, "ada@example.com", "admin")
    admin = bearer(admin_token)
    article = await _published(client, admin)
    path = f"{API}/{article['id']}"
    # a draft cannot change the key (the bot's stable id); a bad as_draft is a 400
    for body in ({"key": "renamed", "as_draft": True}, {"as_draft": "yes", "question": "x"}):
        response = await client.patch(path, json=body, headers=admin)
        assert response.status == 400, body
    # a bad field in a draft save: 400 and no draft
    response = await client.patch(path, json={"question": "", "as_draft": True}, headers=admin)
    assert response.status == 400
    assert (await (await client.get(path, headers=admin)).json())["article"]["draft"] is None

    # a live save while a draft is pending: the live change goes into the draft too,
    # unless the draft changed that field itself
    await client.patch(path, json={"answer_markdown": DRAFT, "as_draft": True}, headers=admin)
    live = await client.patch(
        path, json={"phrasings": ["hours?"], "answer_markdown": "Closed today."}, headers=admin
    )
    shown = (await live.json())["article"]
    assert shown["answer_markdown"] == "Closed today." and shown["phrasings"] == ["hours?"]
    assert shown["draft"]["phrasings"] == ["hours?"]
    assert shown["draft"]["answer_markdown"] == DRAFT

    # unpublishing folds the draft into the article (it is all draft then)
    down = (await (await client.post(f"{path}/unpublish", headers=admin)).json())["article"]
    assert down["status"] == "draft" and down["draft"] is None
    assert down["answer_markdown"] == DRAFT
    # as_draft on an unpublished article edits it directly (it is not live)
    edited = await client.patch(path, json={"question": "Hours?", "as_draft": True}, headers=admin)
    shown = (await edited.json())["article"]
    assert shown["question"] == "Hours?" and shown["draft"] is None


async def test_revert_as_draft_and_import_keeps_publishing(client: AppClient, db: Database) -> None:
    _admin_id, admin_token = await staff_token(db, "ada@example.com", "admin")
    admin = bearer(admin_token)
    article = await _published(client, admin)
    path = f"{API}/{article['id']}"
    await client.patch(path, json={"answer_markdown": "Closed in August."}, headers=admin)
    reverted = await client.post(
        f"{path}/revert", json={"version": 2, "as_draft": True}, headers=admin
    )
    assert reverted.status == 200, await reverted.text()
    shown = (await reverted.json())["article"]
    assert shown["answer_markdown"] == "Closed in August."  # live unchanged
    assert shown["draft"]["answer_markdown"] == LIVE

    # an import of a published row still changes the live article at once
    rows = parse('[{"key": "opening_hours", "question": "When are you open?",'
                 ' "answer_markdown": "Imported.", "locale": "en", "status": "published"}]',
                 "json")  # fmt: skip
    await db.run(lambda s: apply_rows(s, rows, author_user_id=None, note="import"))
    async with db.reading() as session:
        training = await published_training_set(session)
    assert [t.answer for t in training] == ["Imported."]
    after = (await (await client.get(path, headers=admin)).json())["article"]
    assert after["answer_markdown"] == "Imported." and after["status"] == "published"
    # the pending draft had changed the answer itself, so it keeps its own
    assert after["draft"]["answer_markdown"] == LIVE


async def test_a_missed_question_reaches_the_live_article_and_its_draft(
    client: AppClient, db: Database
) -> None:
    """One click adds the phrasing live (the bot learns it now) and to a pending draft
    that changed the phrasings itself (publishing the draft keeps it)."""
    _admin_id, admin_token = await staff_token(db, "ada@example.com", "admin")
    admin = bearer(admin_token)
    article = await _published(client, admin)
    path = f"{API}/{article['id']}"
    await client.patch(
        path, json={"phrasings": ["when do you open"], "as_draft": True}, headers=admin
    )
    chat_inbox = (await webchat_inbox(db)).id
    asked = await intake(
        db,
        InboundMessage(
            channel="webchat", inbox_id=chat_inbox, sender_id="v_1", external_id="v_1:1",
            thread_key="v_1", text="are you open on boxing day",
        ),
    )  # fmt: skip

    async def missed(session: Any) -> int:
        reply = await do_reply(
            session, conversation_id=asked.conversation_id, text="Sorry?",
            author_kind=AuthorKind.BOT,
        )  # fmt: skip
        session.add(
            BotReply(
                message_id=reply.id, conversation_id=asked.conversation_id,
                inbox_id=chat_inbox, question_message_id=asked.message_id, kind="rephrase",
                guesses=[],
            )
        )  # fmt: skip
        return reply.id

    reply_id = await db.run(missed)
    added = await client.post(
        f"/api/v1/bot/missed/{reply_id}/phrasing", json={"article_id": article["id"]},
        headers=admin,
    )  # fmt: skip
    assert added.status == 200, await added.text()
    shown = (await (await client.get(path, headers=admin)).json())["article"]
    assert "are you open on boxing day" in shown["phrasings"]
    assert shown["draft"]["phrasings"] == ["when do you open", "are you open on boxing day"]
    async with db.reading() as session:
        training = await published_training_set(session)
    assert "are you open on boxing day" in training[0].phrasings
