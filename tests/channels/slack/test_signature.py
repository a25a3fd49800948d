"""The pure signature check, at the edges of Slack's 5-minute window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.base import WebhookRejected
from channels.slack.signature import check_signature
from tests.channels.slack.support import SECRET, signed_headers

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BODY = b'{"type":"event_callback"}'


def signed_at(moment: datetime) -> dict[str, str]:
    return signed_headers(BODY, timestamp=int(moment.timestamp()))


@pytest.mark.parametrize("skew", [0, 300, -300])
def test_inside_the_window_is_accepted(skew: int) -> None:
    check_signature(signed_at(NOW + timedelta(seconds=skew)), BODY, SECRET, NOW)


@pytest.mark.parametrize("skew", [301, -301])
def test_outside_the_window_is_refused(skew: int) -> None:
    with pytest.raises(WebhookRejected) as refused:
        check_signature(signed_at(NOW + timedelta(seconds=skew)), BODY, SECRET, NOW)
    assert refused.value.status == 401


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signed_at(NOW).items()}
    check_signature(headers, BODY, SECRET, NOW)


@pytest.mark.parametrize("secret", ["", "   "])
def test_without_a_secret_nothing_passes(secret: str) -> None:
    with pytest.raises(WebhookRejected) as refused:
        check_signature(signed_at(NOW), BODY, secret, NOW)
    assert refused.value.status == 401
