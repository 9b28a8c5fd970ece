"""Password hashing (argon2id) and generated-secret digests."""

from __future__ import annotations

import hashlib

import pytest

from postroom.core.errors import InvalidInput
from postroom.core.secrets import (
    api_key_id,
    hash_password,
    new_api_key,
    new_secret,
    password_needs_rehash,
    secret_digest,
    verify_password,
    verify_secret,
)


def test_password_hash_round_trip() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapler")
    assert not verify_password(stored, "")
    assert not password_needs_rehash(stored)


def test_password_hashes_are_salted() -> None:
    assert hash_password("pw") != hash_password("pw")


def test_unicode_password() -> None:
    stored = hash_password("pässwörd-日本")
    assert verify_password(stored, "pässwörd-日本")
    assert not verify_password(stored, "passwort-日本")


def test_malformed_hash_is_no_match() -> None:
    assert not verify_password("not a hash", "pw")
    assert not verify_password("$argon2id$v=19$m=65536,t=3,p=4$bad", "pw")
    assert password_needs_rehash("not a hash")


def test_weak_parameters_need_rehash() -> None:
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert verify_password(old, "pw")
    assert password_needs_rehash(old)


def test_password_limits() -> None:
    with pytest.raises(InvalidInput) as info:
        hash_password("")
    assert info.value.field == "password"
    with pytest.raises(InvalidInput):
        hash_password("x" * 1025)
    assert not verify_password(hash_password("x"), "x" * 5000)


def test_new_secret() -> None:
    secret = new_secret("smtp")
    assert secret.startswith("smtp_")
    assert len(secret) == len("smtp_") + 43  # 32 bytes, URL-safe base64 without padding
    assert all(c.isalnum() or c in "-_" for c in secret)
    assert new_secret("smtp") != secret
    assert len(new_secret("k", nbytes=16)) == 2 + 22
    with pytest.raises(ValueError):
        new_secret("Bad Prefix")
    with pytest.raises(ValueError):
        new_secret("k", nbytes=8)


def test_secret_digest() -> None:
    secret = new_secret("smtp")
    digest = secret_digest(secret)
    assert digest == hashlib.sha256(secret.encode()).hexdigest()
    assert len(digest) == 64 and secret not in digest
    assert verify_secret(secret, digest)
    assert not verify_secret(secret + "x", digest)
    assert not verify_secret(secret, "0" * 64)
    assert not verify_secret(secret, "")


def test_api_key() -> None:
    issued = new_api_key()
    prefix, key_id, rest = issued.token.split("_", 2)
    assert prefix == "prk" and key_id == issued.key_id and len(key_id) == 12
    assert len(rest) == 43
    assert issued.digest == secret_digest(issued.token)
    assert verify_secret(issued.token, issued.digest)
    assert api_key_id(issued.token) == issued.key_id
    assert api_key_id(f"  {issued.token}\n") == issued.key_id
    assert new_api_key().key_id != issued.key_id
    assert new_api_key("live").token.startswith("live_")


def test_api_key_is_never_shown_by_repr_or_str() -> None:
    issued = new_api_key()
    secret_part = issued.token.split("_", 2)[2]
    for text in (repr(issued), str(issued), f"{issued}", repr([issued])):
        assert secret_part not in text
        assert issued.key_id in text


@pytest.mark.parametrize(
    "token",
    [
        "",
        "prk",
        "prk_short_abc",
        "Bearer prk_abcdefghijkl_" + "x" * 43,
        "prk_abcdefghijk!_" + "x" * 43,
    ],
)
def test_malformed_api_keys(token: str) -> None:
    with pytest.raises(InvalidInput) as info:
        api_key_id(token)
    assert info.value.field == "api_key"
    assert str(info.value) == "malformed API key"  # the token is not echoed
