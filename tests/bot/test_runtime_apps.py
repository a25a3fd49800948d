"""Every process serves the new model: a publish through one app instance's REST API
reaches another instance's bot runtime over the shared bus (PostgreSQL + Redis)."""

from __future__ import annotations

import pytest

from bot.runtime import BotRuntime
from switchboard.appkeys import BOT_RUNTIME
from switchboard.tx import Database
from tests.bot.test_runtime import LOCKER, LOCKER_ANSWER, LOCKER_PHRASINGS, answer_for, wait_until
from tests.conftest import Backend, ClientFactory
from tests.security.support import bearer, staff_token, use_cheap_password_hashing

API = "/api/v1/kb/articles"


# Two processes share a bus only through Redis.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_publish_on_instance_a_is_served_by_instance_b(
    backend: Backend, make_client: ClientFactory, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cheap_password_hashing(monkeypatch)
    _admin_id, token = await staff_token(db, "ada@example.com", "admin")
    admin = bearer(token)
    a = await make_client()
    # B never polls within the test: only the bus can tell it.
    b = await make_client(bot_poll_interval=3600)
    runtime_b: BotRuntime = b.app[BOT_RUNTIME]
    assert a.app[BOT_RUNTIME] is not runtime_b
    assert (await runtime_b.current()).articles == {}

    article = {
        "key": "parcel_locker",
        "locale": "en",
        "question": LOCKER_PHRASINGS[0],
        "phrasings": LOCKER_PHRASINGS[1:],
        "answer_markdown": LOCKER_ANSWER,
    }
    created = await a.post(API, json=article, headers=admin)
    assert created.status == 201, await created.text()
    article_id = (await created.json())["article"]["id"]
    published = await a.post(f"{API}/{article_id}/publish", headers=admin)
    assert published.status == 200, await published.text()

    async def b_answers() -> bool:
        return answer_for(await runtime_b.current(), LOCKER) == ("parcel_locker", LOCKER_ANSWER)

    await wait_until(b_answers, "instance B answers from the article published on A")

    new_answer = "Ask the courier for a new PIN: reply NEWPIN to the SMS."
    patched = await a.patch(
        f"{API}/{article_id}", json={"answer_markdown": new_answer}, headers=admin
    )
    assert patched.status == 200, await patched.text()

    async def b_answers_the_edit() -> bool:
        return answer_for(await runtime_b.current(), LOCKER) == ("parcel_locker", new_answer)

    await wait_until(b_answers_the_edit, "instance B answers with the edited text")
