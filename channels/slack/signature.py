"""Slack's request signature, checked on the raw bytes before anything parses them.

The HMAC and the 5-minute window are slack_sdk's `SignatureVerifier`. What it leaves to the
caller is done here, because each of these raises inside the SDK (a 500 in bolt) instead of
failing the check: a timestamp that `int()` refuses (or accepts too liberally: " 12", "١٢"),
a signature with non-ASCII characters (`hmac.compare_digest` raises on those), a body that
is not UTF-8, and an empty secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from slack_sdk.signature import Clock, SignatureVerifier

from channels.base import WebhookRejected

# Slack's replay window: the SDK's, and what Slack documents.
MAX_SKEW_SECONDS = 300
# A Unix time in seconds has 10 digits until 2286; anything longer is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


class _At(Clock):
    """The SDK's clock, fixed at the moment the request is checked (so tests set it)."""

    def __init__(self, now: datetime) -> None:
        self._now = now.timestamp()

    def now(self) -> float:
        return self._now


def _refuse(reason: str) -> WebhookRejected:
    return WebhookRejected(401, reason)


def check_signature(
    headers: Mapping[str, str], body: bytes, signing_secret: str, now: datetime
) -> None:
    """Raise `WebhookRejected(401)` unless Slack signed exactly these bytes within 5 min."""
    if not signing_secret.strip():
        # An inbox without a secret cannot tell Slack from anyone: it takes nothing.
        raise _refuse("this Slack inbox has no signing secret")
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise _refuse("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not (
        timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
    ):
        raise _refuse("malformed X-Slack-Request-Timestamp")
    if abs(now.timestamp() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise _refuse("request timestamp outside the 5-minute window")
    if not signature.isascii():
        raise _refuse("malformed X-Slack-Signature")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        # Slack signs UTF-8 JSON; the SDK cannot even compute a signature over other bytes.
        raise _refuse("body is not UTF-8, so it cannot be Slack's") from None
    verifier = SignatureVerifier(signing_secret, clock=_At(now))
    # Full-length constant-time comparison of the whole header value, whatever its length.
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise _refuse("signature does not match")
