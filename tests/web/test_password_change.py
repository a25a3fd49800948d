"""A user changes their own password: the current one is asked for and throttled, and
every other session and API token ends with the old password."""

from __future__ import annotations

from sqlalchemy import select

from switchboard import accounts
from switchboard.audit import AuditEntry
from switchboard.tx import Database
from tests.conftest import PASSWORD, ClientFactory, create_user, login

NEW = "a much better passphrase"


async def change(client: object, csrf: str, current: str, new: str = NEW, confirm: str = NEW):  # type: ignore[no-untyped-def]
    return await client.post(  # type: ignore[attr-defined]
        "/preferences/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "confirm_password": confirm,
        },
        allow_redirects=False,
    )


async def test_changing_the_password_ends_every_other_session_and_token(
    make_client: ClientFactory, db: Database
) -> None:
    user_id = await create_user(db, "mei@example.com", "agent", "Mei")
    here, elsewhere = await make_client(), await make_client()
    csrf = await login(here, "mei@example.com")
    await login(elsewhere, "mei@example.com")

    async def token(session: object) -> str:
        user = await accounts.get_user_by_email(session, "mei@example.com")  # type: ignore[arg-type]
        assert user is not None
        return await accounts.do_create_api_token(session, user, "script")  # type: ignore[arg-type]

    api_token = await db.run(token)
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert (await here.get("/api/v1/me", headers=bearer)).status == 200

    done = await change(here, csrf, PASSWORD)
    assert done.status == 303 and done.headers["Location"] == "/preferences?saved=password"
    # This browser carries on with a fresh session; the other browser and the token are out.
    page = await here.get(done.headers["Location"])
    assert page.status == 200 and "Password changed" in await page.text()
    assert (await elsewhere.get("/api/v1/me")).status == 401
    assert (await here.get("/api/v1/me", headers=bearer)).status == 401

    async with db.reading() as session:
        assert await accounts.authenticate(session, "mei@example.com", PASSWORD) is None
        assert await accounts.authenticate(session, "mei@example.com", NEW) is not None
        entry = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.action == "auth.password_changed")
            )
        ).scalar_one()
    assert entry.target_id == str(user_id) or entry.target_id == user_id


async def test_bad_attempts_change_nothing_and_are_throttled(
    make_client: ClientFactory, db: Database
) -> None:
    await create_user(db, "jun@example.com", "agent", "Jun")
    client = await make_client()
    csrf = await login(client, "jun@example.com")

    assert (await change(client, csrf, PASSWORD, "short", "short")).status == 400
    mismatch = await change(client, csrf, PASSWORD, NEW, NEW + "!")
    assert mismatch.status == 400 and "differ" in await mismatch.text()
    same = await change(client, csrf, PASSWORD, PASSWORD, PASSWORD)
    assert same.status == 400
    # Without the CSRF token the form is refused before anything is read.
    assert (await change(client, "", PASSWORD)).status == 403

    for _ in range(5):
        wrong = await change(client, csrf, "not my password")
        assert wrong.status == 400 and "wrong" in await wrong.text()
    # A borrowed session cannot keep guessing: even the right password now waits.
    assert (await change(client, csrf, PASSWORD)).status == 429
    async with db.reading() as session:
        assert await accounts.authenticate(session, "jun@example.com", PASSWORD) is not None
    assert (await client.get("/api/v1/me")).status == 200  # the session itself still works


async def test_password_change_needs_a_login(make_client: ClientFactory) -> None:
    client = await make_client()
    refused = await change(client, "", PASSWORD)
    assert refused.status in (401, 403)
