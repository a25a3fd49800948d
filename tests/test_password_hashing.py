"""The production password hasher: the tests run with a cheap one (tests/conftest.py), so
this checks that what the hub stores is still Argon2id at full cost, and that hashes of
either cost verify (the parameters travel in the hash)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

from switchboard import accounts

pytestmark = pytest.mark.real_password_hashing


def test_stored_hashes_are_argon2id_at_production_cost() -> None:
    stored = accounts._hasher.hash("correct horse battery")
    params = stored.split("$")
    assert params[1] == "argon2id"
    cost = dict(kv.split("=") for kv in params[3].split(","))
    assert int(cost["m"]) >= 65536 and int(cost["t"]) >= 3
    assert accounts._hasher.type is Type.ID


def test_a_cheap_hash_still_verifies_with_its_own_parameters() -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("a password!")
    assert accounts._hasher.verify(cheap, "a password!")
    with pytest.raises(VerifyMismatchError):
        accounts._hasher.verify(cheap, "another one")
