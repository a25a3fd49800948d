"""Signed links to the rating page: HMAC-SHA256 over the survey id and an expiry.

The key is derived from the secret key with HKDF (its own `info`, so it is never the key
that seals inbox credentials in `switchboard.crypto`). A token names one survey and
carries its own expiry; nothing about it is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_TOKEN = re.compile(r"^([1-9][0-9]{0,11})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})$")


class LinkRefused(Exception):
    """The link is forged, malformed or expired; `expired` tells which, for the page."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


class RatingLinks:
    def __init__(self, secret_key: str, public_url: str) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"switchboard csat links"
        ).derive(secret_key.encode())
        self._base = public_url.rstrip("/")

    def _sign(self, survey_id: int, expires: int) -> str:
        digest = hmac.new(self._key, f"csat:{survey_id}:{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")

    def token(self, survey_id: int, expires_at: datetime) -> str:
        expires = int(expires_at.timestamp())
        return f"{survey_id}.{expires}.{self._sign(survey_id, expires)}"

    def url(self, survey_id: int, expires_at: datetime) -> str:
        return f"{self._base}/csat/{self.token(survey_id, expires_at)}"

    def check(self, token: str, now: datetime) -> int:
        """The survey id the token names; `LinkRefused` if forged or past its expiry."""
        found = _TOKEN.match(token)
        if found is None:
            raise LinkRefused(expired=False)
        survey_id, expires = int(found[1]), int(found[2])
        if not hmac.compare_digest(found[3], self._sign(survey_id, expires)):
            raise LinkRefused(expired=False)
        if datetime.fromtimestamp(expires, UTC) <= now:
            raise LinkRefused(expired=True)
        return survey_id
