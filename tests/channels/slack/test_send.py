"""Replies to Slack: into the right thread, paced per channel, failures typed for the outbox;
and file downloads that go to Slack only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.base import DeliveryFailed, InboundFile, OutboundFile, OutboundMessage
from channels.pacing import Pacer
from channels.slack.adapter import FileRefused, SlackAdapter
from tests.channels.slack.support import inbox_setup
from tests.clock import FakeTime
from tests.fakes.slack_api import FakeSlackApi


def reply(thread_key: str, text: str = "Please unplug it.", **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        outbox_id=1,
        message_id=10,
        conversation_id=3,
        inbox_id=7,
        seq=2,
        thread_key=thread_key,
        recipient_id="U0CUST",
        text=text,
        author_kind="agent",
        **fields,
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def adapter(slack_api: FakeSlackApi, fake_time: FakeTime) -> AsyncIterator[SlackAdapter]:
    adapter = SlackAdapter(
        inbox_setup(slack_api.api_url), clock=fake_time.clock, sleep=fake_time.sleep
    )
    yield adapter
    await adapter.aclose()


async def test_reply_goes_into_the_thread_it_answers(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    receipt = await adapter.send(reply("C0SUPPORT:1700000000.000200"))
    [posted] = slack_api.posted
    assert (posted.channel, posted.thread_ts, posted.text) == (
        "C0SUPPORT",
        "1700000000.000200",
        "Please unplug it.",
    )
    # The receipt names the message the way inbound messages are named.
    assert receipt.external_id == f"C0SUPPORT:{posted.ts}"
    [call] = slack_api.calls_to("chat.postMessage")
    assert call.token == "xoxb-1111-2222-fake"


async def test_agent_text_arrives_as_typed_not_as_markup(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    await adapter.send(reply("D0DMCUST:1700000000.000100", "<!channel> see <https://x.test|y> & z"))
    assert slack_api.posted[0].text == "&lt;!channel&gt; see &lt;https://x.test|y&gt; &amp; z"


async def test_rate_limit_becomes_retry_after_without_a_retry_inside_the_send(
    adapter: SlackAdapter, slack_api: FakeSlackApi, fake_time: FakeTime
) -> None:
    slack_api.fail_next("chat.postMessage", 429, retry_after=17)
    with pytest.raises(DeliveryFailed) as failed:
        await adapter.send(reply("C0SUPPORT:1700000000.000200"))
    assert failed.value.retry_after == 17 and not failed.value.permanent
    assert len(slack_api.calls_to("chat.postMessage")) == 1  # the SDK did not retry
    assert slack_api.posted == []
    # The channel is held: another reply to it now is sent back to the outbox, not slept.
    with pytest.raises(DeliveryFailed) as held:
        await adapter.send(reply("C0SUPPORT:1700000000.000999"))
    assert held.value.retry_after is not None and held.value.retry_after > 10
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_server_errors_are_retried_later_and_refusals_are_final(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    slack_api.fail_next("chat.postMessage", 503)
    with pytest.raises(DeliveryFailed) as unavailable:
        await adapter.send(reply("C0A:1.0"))
    assert not unavailable.value.permanent and unavailable.value.retry_after is None

    slack_api.fail_next("chat.postMessage", 200, error="channel_not_found")
    with pytest.raises(DeliveryFailed) as refused:
        await adapter.send(reply("C0B:1.0"))
    assert refused.value.permanent and "channel_not_found" in refused.value.reason
    assert slack_api.posted == []


async def test_cannot_connect_means_not_sent(fake_time: FakeTime) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    adapter = SlackAdapter(
        inbox_setup(f"http://127.0.0.1:{port}/api/"), clock=fake_time.clock, sleep=fake_time.sleep
    )
    with pytest.raises(DeliveryFailed):
        await adapter.send(reply("C0A:1.0"))
    await adapter.aclose()


async def test_about_one_message_per_second_per_channel(
    adapter: SlackAdapter, slack_api: FakeSlackApi, fake_time: FakeTime
) -> None:
    await adapter.send(reply("C0A:1.0", "one"))
    await adapter.send(reply("C0A:1.0", "two"))
    await adapter.send(reply("C0B:1.0", "elsewhere"))
    assert fake_time.slept == [1.0]  # only the second message to C0A waited
    fake_time.now += 5
    await adapter.send(reply("C0A:1.0", "later"))
    assert fake_time.slept == [1.0]
    assert [p.text for p in slack_api.posted] == ["one", "two", "elsewhere", "later"]


async def test_a_long_queue_goes_back_to_the_outbox_instead_of_sleeping() -> None:
    now = [0.0]

    async def no_sleep(seconds: float) -> None:
        return None

    pacer: Pacer[str] = Pacer(
        lambda _channel: 1.0, max_wait=3.0, clock=lambda: now[0], sleep=no_sleep
    )
    for _ in range(4):
        await pacer.wait_turn("C0A")  # slots at 0, 1, 2, 3
    with pytest.raises(DeliveryFailed) as busy:
        await pacer.wait_turn("C0A")
    assert busy.value.retry_after == 4.0


async def test_files_are_uploaded_into_the_thread_with_the_text(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    files = [OutboundFile("label.pdf", "application/pdf", b"%PDF-1.4 return label")]
    receipt = await adapter.send(
        reply("C0SUPPORT:1700000000.000200", "Here is your label", files=files)
    )
    [posted] = slack_api.posted
    assert posted.channel == "C0SUPPORT" and posted.thread_ts == "1700000000.000200"
    assert posted.text == "Here is your label"
    assert [(f["name"], f["data"]) for f in posted.files] == [
        ("label.pdf", b"%PDF-1.4 return label")
    ]
    assert receipt.external_id == f"C0SUPPORT:files:{posted.files[0]['id']}"


async def test_files_are_fetched_from_slack_with_the_bot_token(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    shared = slack_api.add_file("smoke.png", b"\x89PNG fake image", "image/png")
    data = await adapter.fetch(InboundFile("smoke.png", "image/png", ref=shared["url_private"]))
    assert data == b"\x89PNG fake image"
    assert slack_api.downloads[-1][1] == "Bearer xoxb-1111-2222-fake"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/files-pri/T0001-F1/x.png",  # loopback, but not the API's port
        "https://files.slack.com.evil.test/files-pri/T0001-F1/x.png",
        "https://files.slack.com@evil.test/x.png",
        "https://user:pw@files.slack.com/x.png",
        "http://files.slack.com/files-pri/T0001-F1/x.png",  # not https
        "file:///etc/passwd",
        "/files-pri/T0001-F1/x.png",
        "",
    ],
)
async def test_file_urls_outside_slack_are_never_fetched(
    adapter: SlackAdapter, slack_api: FakeSlackApi, url: str
) -> None:
    with pytest.raises(FileRefused):
        await adapter.fetch(InboundFile("x.png", ref=url))
    assert slack_api.downloads == []


async def test_redirects_are_not_followed(adapter: SlackAdapter, slack_api: FakeSlackApi) -> None:
    shared = slack_api.add_file("smoke.png", b"data", "image/png")
    adapter.bot_token = "xoxb-wrong"  # Slack answers a wrong token with a sign-in redirect
    with pytest.raises(FileRefused):
        await adapter.fetch(InboundFile("smoke.png", ref=shared["url_private"]))
    assert [path for path, _ in slack_api.downloads] == [
        shared["url_private"].split(slack_api.url, 1)[1]
    ]
