"""Articles keep a full history, and the bot's training set is only what is published."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.events import PublishedArticlesChanged
from knowledge_base.service import (
    do_create_article,
    do_publish,
    do_unpublish,
    do_update_article,
    get_article,
    history,
    list_articles,
    published_training_set,
)
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.tx import Database
from tests.conftest import create_user

HOURS = {
    "key": "opening_hours",
    "question": "When are you open?",
    "phrasings": ["opening hours", "what time do you open", "opening hours"],
    "answer_markdown": "We are open **9:00-18:00**, Monday to Friday.",
    "locale": "en",
    "category": "store",
    "tags": ["hours"],
}


async def test_every_save_is_a_version_with_its_author(db: Database) -> None:
    ada = await create_user(db, "ada@example.com", role="admin")
    bo = await create_user(db, "bo@example.com", role="admin")
    article = await db.run(lambda s: do_create_article(s, HOURS, author_user_id=ada))
    await db.run(
        lambda s: do_update_article(
            s,
            article.id,
            {"answer_markdown": "Open 8:00-20:00 every day."},
            author_user_id=bo,
            change_note="summer hours",
        )
    )
    await db.run(lambda s: do_publish(s, article.id, author_user_id=bo))
    async with db.reading() as session:
        current = await get_article(session, article.id)
        versions = await history(session, article.id)
    assert current.version == 3 and current.status == "published"
    assert current.phrasings == ["opening hours", "what time do you open"]  # deduplicated
    assert [(v.version, v.author_user_id, v.status) for v in versions] == [
        (1, ada, "draft"),
        (2, bo, "draft"),
        (3, bo, "published"),
    ]
    assert versions[0].answer_markdown.startswith("We are open")
    assert versions[1].change_note == "summer hours"
    assert versions[1].answer_markdown == "Open 8:00-20:00 every day."


async def test_training_set_holds_only_published_articles(db: Database) -> None:
    first = await db.run(lambda s: do_create_article(s, HOURS, author_user_id=None, publish=True))
    await db.run(
        lambda s: do_create_article(
            s, {**HOURS, "key": "draft_one", "locale": "zh-Hans"}, author_user_id=None
        )
    )
    async with db.reading() as session:
        training = await published_training_set(session)
    assert [(t.key, t.article_id, t.version) for t in training] == [("opening_hours", first.id, 1)]
    assert training[0].phrasings == ("opening hours", "what time do you open")
    await db.run(lambda s: do_unpublish(s, first.id, author_user_id=None))
    async with db.reading() as session:
        assert await published_training_set(session) == []
        assert len(await list_articles(session, locale="zh")) == 1


async def test_bad_input_is_refused(db: Database) -> None:
    await db.run(lambda s: do_create_article(s, HOURS, author_user_id=None))
    with pytest.raises(Conflict):
        await db.run(lambda s: do_create_article(s, HOURS, author_user_id=None))
    for bad in (
        {**HOURS, "key": "Has Spaces"},
        {**HOURS, "question": ""},
        {**HOURS, "question": "x" * 501},
        {**HOURS, "phrasings": "not a list"},
        {**HOURS, "locale": "english please"},
    ):
        with pytest.raises(InvalidInput):
            await db.run(lambda s, bad=bad: do_create_article(s, bad, author_user_id=None))
    with pytest.raises(NotFound):
        await db.run(lambda s: do_update_article(s, 999, {}, author_user_id=None))


async def test_changes_to_published_content_tell_the_bot_after_commit(db: Database) -> None:
    draft = await db.run(lambda s: do_create_article(s, HOURS, author_user_id=None))
    async with db.bus.subscribe(["knowledge_base"]) as subscription:
        # A draft edit changes nothing the bot trains on: no event.
        await db.run(lambda s: do_update_article(s, draft.id, {}, author_user_id=None))
        await db.run(lambda s: do_publish(s, draft.id, author_user_id=None))
        await db.run(lambda s: do_update_article(s, draft.id, {}, author_user_id=None))
        await db.run(lambda s: do_unpublish(s, draft.id, author_user_id=None))

        async def many(session: AsyncSession) -> None:
            for n in range(3):
                await do_create_article(
                    session, {**HOURS, "key": f"k{n}"}, author_user_id=None, publish=True
                )

        await db.run(many)
        # A marker: if the transaction above sent more than one event, it comes late.
        await db.run(lambda s: do_publish(s, draft.id, author_user_id=None))
        seen = [await asyncio.wait_for(subscription.get(), 5) for _ in range(5)]
    assert all(isinstance(e, PublishedArticlesChanged) for e in seen)
    changed = [e.article_ids for e in seen if isinstance(e, PublishedArticlesChanged)]
    assert changed[:3] == [[draft.id]] * 3
    assert len(changed[3]) == 3  # one event for the whole transaction
    assert changed[4] == [draft.id]
