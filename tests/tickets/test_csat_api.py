"""The rating page behind a signed link, the per-inbox switch and the CSAT report."""

from __future__ import annotations

from datetime import timedelta

from switchboard.appkeys import SETTINGS
from switchboard.db import utcnow
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.security.support import bearer, staff_token
from tests.tickets.test_csat import send_requests, solved_ticket, surveys
from tickets.csat import CsatPolicy, CsatWorker
from tickets.csat_links import RatingLinks


def links(client: AppClient) -> RatingLinks:
    settings = client.app[SETTINGS]
    return RatingLinks(settings.secret_key, settings.public_url)


async def surveyed(client: AppClient, db: Database, visitor: str) -> tuple[int, str]:
    """(ticket id, the rating page's path) for a ticket an agent solved."""
    _, _, ticket_id = await solved_ticket(db, visitor)
    worker = CsatWorker.from_settings(db, client.app[SETTINGS])
    await worker.run_once()
    survey = next(s for s in await surveys(db) if s.ticket_id == ticket_id)
    url = links(client).url(survey.id, survey.expires_at)
    return ticket_id, url[len(client.app[SETTINGS].public_url) :]


async def test_the_link_page_stores_rating_and_comment(client: AppClient, db: Database) -> None:
    ticket_id, path = await surveyed(client, db, "v_link_ok")
    page = await client.get(path)
    assert page.status == 200
    html = await page.text()
    assert 'name="rating"' in html and "5 – Excellent" in html
    assert page.headers["Cache-Control"] == "no-store"
    answer = await client.post(
        path, data={"rating": "5", "comment": "<script>alert(1)</script> great"}
    )
    assert answer.status == 200
    assert "Thank you for your rating" in await answer.text()
    [survey] = await surveys(db)
    assert (survey.ticket_id, survey.rating, survey.answered_via) == (ticket_id, 5, "link")
    assert survey.comment == "<script>alert(1)</script> great"  # stored as written
    # Changed within the window: the page again.
    assert (await client.post(path, data={"rating": "3"})).status == 200
    assert (await surveys(db))[0].rating == 3


async def test_bad_answers_store_nothing(client: AppClient, db: Database) -> None:
    _, path = await surveyed(client, db, "v_link_bad")
    for form in ({"rating": "6"}, {"rating": "４"}, {}, {"rating": "4", "comment": "x" * 2001}):
        response = await client.post(path, data=form)
        assert response.status == 400
        assert "choose a rating from 1 to 5" in await response.text()
    assert [s.rating for s in await surveys(db)] == [None]


async def test_forged_and_expired_links_are_refused(client: AppClient, db: Database) -> None:
    _, path = await surveyed(client, db, "v_link_forged")
    [survey] = await surveys(db)
    token = path.rsplit("/", 1)[1]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    other = f"{survey.id + 1}.{token.split('.', 2)[1]}.{token.split('.', 2)[2]}"
    for bad in (forged, other, "<img src=x onerror=alert(1)>", "1.2.3"):
        page = await client.get(f"/csat/{bad}")
        assert page.status == 404
        text = await page.text()
        assert "This rating link is not valid." in text and "<img" not in text
        assert (await client.post(f"/csat/{bad}", data={"rating": "1"})).status == 404
    expired = links(client).token(survey.id, utcnow() - timedelta(seconds=1))
    page = await client.get(f"/csat/{expired}")
    assert page.status == 410
    assert "This rating link has expired." in await page.text()
    assert (await client.post(f"/csat/{expired}", data={"rating": "1"})).status == 410
    assert [s.rating for s in await surveys(db)] == [None]


async def test_an_expired_survey_cannot_be_rated_even_with_a_longer_link(
    client: AppClient, db: Database
) -> None:
    await solved_ticket(db, "v_link_closed")
    await send_requests(db, CsatPolicy(window=timedelta(hours=1)), at_offset=-7200)
    [survey] = await surveys(db)
    # A link signed with a later expiry than the survey's window still cannot rate it.
    token = links(client).token(survey.id, utcnow() + timedelta(days=1))
    page = await client.get(f"/csat/{token}")
    assert page.status == 410
    assert "can no longer be changed" in await page.text()
    assert (await client.post(f"/csat/{token}", data={"rating": "5"})).status == 410
    assert [s.rating for s in await surveys(db)] == [None]


async def test_admins_switch_csat_per_inbox(client: AppClient, db: Database) -> None:
    _, admin = await staff_token(db, "admin-csat@example.com", "admin")
    _, boss = await staff_token(db, "boss-csat@example.com", "supervisor")
    inbox_id, _, _ = await solved_ticket(db, "v_switch")
    got = await client.get(f"/api/v1/inboxes/{inbox_id}/csat", headers=bearer(admin))
    assert (await got.json()) == {"inbox_id": inbox_id, "enabled": True}
    path = f"/api/v1/inboxes/{inbox_id}/csat"
    assert (await client.put(path, json={"enabled": False}, headers=bearer(boss))).status == 403
    # Supervisors read settings (web.access.access_reader), only admins change them.
    assert (await client.get(path, headers=bearer(boss))).status == 200
    for bad in ({"enabled": "no"}, {}, {"enabled": False, "x": 1}):
        assert (await client.put(path, json=bad, headers=bearer(admin))).status == 400
    assert (await client.get("/api/v1/inboxes/999999/csat", headers=bearer(admin))).status == 404
    changed = await client.put(path, json={"enabled": False}, headers=bearer(admin))
    assert (await changed.json()) == {"inbox_id": inbox_id, "enabled": False}
    await send_requests(db)
    [survey] = await surveys(db)
    assert survey.skipped == "disabled" and survey.message_id is None


async def test_report_filters_pages_and_sums(client: AppClient, db: Database) -> None:
    _, boss = await staff_token(db, "boss-report@example.com", "supervisor")
    paths = [(await surveyed(client, db, f"v_rep{i}"))[1] for i in range(3)]
    for path, rating in zip(paths, ("5", "4", "2"), strict=True):
        assert (await client.post(path, data={"rating": rating})).status == 200
    first = await (await client.get("/api/v1/csat?limit=2", headers=bearer(boss))).json()
    assert [r["rating"] for r in first["ratings"]] == [2, 4]  # newest survey first
    assert first["summary"] == {"count": 3, "average": 3.67, "satisfied_percent": 66.7}
    rest = await (
        await client.get(
            f"/api/v1/csat?limit=2&cursor={first['next_cursor']}", headers=bearer(boss)
        )
    ).json()
    assert [r["rating"] for r in rest["ratings"]] == [5] and rest["next_cursor"] is None
    agent_id = first["ratings"][0]["agent_id"]
    mine = await (
        await client.get(f"/api/v1/csat?agent_id={agent_id}", headers=bearer(boss))
    ).json()
    assert [r["rating"] for r in mine["ratings"]] == [2]
    later = (utcnow() + timedelta(hours=1)).isoformat()
    none = await (
        await client.get("/api/v1/csat", params={"from": later}, headers=bearer(boss))
    ).json()
    assert none["ratings"] == [] and none["summary"]["count"] == 0
    for bad in ("from=yesterday", "limit=0", "cursor=-1", "agent=1"):
        response = await client.get(f"/api/v1/csat?{bad}", headers=bearer(boss))
        assert response.status == 400, bad


async def test_the_api_document_describes_csat(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert set(document["paths"]["/csat"]["get"]["responses"]) >= {"200", "400", "403"}
    assert "put" in document["paths"]["/inboxes/{id}/csat"]
    assert "rating" in document["components"]["schemas"]["CsatSurvey"]["properties"]
    assert "csat" in document["components"]["schemas"]["Ticket"]["properties"]


async def test_a_staff_session_in_the_browser_does_not_block_the_link(
    client: AppClient, db: Database
) -> None:
    """The signed link authorises the post, not a session: with a staff session cookie
    present (the page opened before logging in, or a shared browser) the form, which
    carries no CSRF token, is still accepted. Other session POSTs still need the token."""
    from tests.conftest import create_user, login

    _, path = await surveyed(client, db, "v_link_staff")
    page = await (await client.get(path)).text()  # before logging in
    assert "csrf_token" not in page
    await create_user(db, "tries-it@example.com")
    await login(client, "tries-it@example.com")
    assert "csrf_token" not in await (await client.get(path)).text()
    answer = await client.post(path, data={"rating": "2", "comment": "slow"})
    assert answer.status == 200
    assert [(s.rating, s.comment) for s in await surveys(db)] == [(2, "slow")]
    # Narrow: the session's other unsafe requests are still checked.
    refused = await client.post("/api/v1/tickets", json={"conversation_id": 1})
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "csrf"


async def test_report_times_beyond_the_calendar_are_a_400(client: AppClient, db: Database) -> None:
    """0001-01-01 at +01:00 is before year 1 in UTC: a clear 400, not a 500."""
    _, boss = await staff_token(db, "boss-range@example.com", "supervisor")
    for name, raw in (("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:59-01:00")):
        response = await client.get("/api/v1/csat", params={name: raw}, headers=bearer(boss))
        assert response.status == 400, raw
        body = await response.json()
        assert body["error"]["code"] == "invalid_filter"
        assert f"{name} is outside the supported range" in body["error"]["message"]
    fine = await client.get(
        "/api/v1/csat", params={"from": "2020-01-01T00:00:00+01:00"}, headers=bearer(boss)
    )
    assert fine.status == 200


async def test_agents_see_the_score_but_not_the_comment(client: AppClient, db: Database) -> None:
    """REST and live ticket events carry the ticket view, whose `csat` has no comment;
    supervisors read the comment in the CSAT report."""
    import asyncio

    from conversations.events import INBOX_TOPIC
    from tests.tickets.support import set_status
    from tickets.events import TicketUpdated

    _, agent = await staff_token(db, "agent-csat@example.com", "agent")
    _, boss = await staff_token(db, "boss-comment@example.com", "supervisor")
    ticket_id, path = await surveyed(client, db, "v_no_comment")
    comment = "the refund never came"
    assert (await client.post(path, data={"rating": "2", "comment": comment})).status == 200
    got = await client.get(f"/api/v1/tickets/{ticket_id}", headers=bearer(agent))
    assert got.status == 200
    body = await got.json()
    csat = body.get("ticket", body)["csat"]
    assert csat["rating"] == 2 and csat["commented_at"] is not None
    assert "comment" not in csat and comment not in await got.text()
    async with db.bus.subscribe([INBOX_TOPIC]) as events:
        await set_status(db, ticket_id, "open", actor="system")
        async with asyncio.timeout(5):
            async for event in events:
                if isinstance(event, TicketUpdated) and event.ticket_id == ticket_id:
                    break
    assert event.ticket["csat"]["rating"] == 2 and "comment" not in event.ticket["csat"]
    report = await client.get(f"/api/v1/csat?ticket_id={ticket_id}", headers=bearer(boss))
    assert [r["comment"] for r in (await report.json())["ratings"]] == [comment]
    assert (await client.get("/api/v1/csat", headers=bearer(agent))).status == 403
