"""Channel credentials at rest: encrypted with a key derived from the secret key.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) gives authenticated
encryption; HKDF derives its key so the secret key itself never encrypts anything
directly and a change of secret key makes old ciphertexts fail loudly, not silently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class CredentialsUnreadable(Exception):
    """Stored credentials do not decrypt with this secret key (it was changed)."""


class CredentialBox:
    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"switchboard inbox credentials"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, credentials: Mapping[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(dict(credentials)).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise CredentialsUnreadable(
                "inbox credentials cannot be decrypted with this SWITCHBOARD_SECRET_KEY"
            ) from None
        return {str(k): str(v) for k, v in data.items()}
