"""How two records are compared: normalised email addresses, names and phone numbers.

Pure functions, no I/O. A key is None when the value is too weak to compare (an empty
name, "Guest", a phone number of four digits): such values never produce a suggestion.
"""

from __future__ import annotations

import unicodedata

MAX_EMAIL = 320
# Placeholders channels and forms fill in when nobody typed a name.
_PLACEHOLDER_NAMES = frozenset(
    {
        "admin",
        "anonymous",
        "customer",
        "guest",
        "me",
        "na",
        "n/a",
        "name",
        "none",
        "null",
        "test",
        "unknown",
        "user",
        "visitor",
    }
)
_MIN_NAME_CHARACTERS = 3
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 6, 20


def normalise_email(value: object) -> str | None:
    """The address lowercased, or None if it is not a plausible single address.

    Lowercasing the local part is not what RFC 5321 says, but it is what every mail
    provider people use does, and it is the safer side: it links fewer records apart."""
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    if not 3 <= len(address) <= MAX_EMAIL or not address.isprintable():
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return None
    if "@" in local or domain.startswith(".") or domain.endswith("."):
        return None
    return address


def name_key(value: str | None) -> str | None:
    """Case-, accent-form- and whitespace-insensitive name, or None if trivial."""
    if not value:
        return None
    folded = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    if folded in _PLACEHOLDER_NAMES:
        return None
    if sum(c.isalnum() for c in folded) < _MIN_NAME_CHARACTERS:
        return None
    return folded[:200]


def phone_key(value: str | None) -> str | None:
    """The digits of a phone number ("00" international prefix read as "+"), or None.

    Without the customer's country a national number ("020 …") cannot be told equal to
    its international form ("+44 20 …"); those stay apart rather than guess."""
    if not value:
        return None
    # Decimal digits of any script (Arabic-Indic "٠١٢" too), as ASCII.
    digits = "".join(str(d) for c in value if (d := unicodedata.decimal(c, None)) is not None)
    if digits.startswith("00"):
        digits = digits[2:]
    if not _MIN_PHONE_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
        return None
    return digits
