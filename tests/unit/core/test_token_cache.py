"""The bounded verified-token map shared by the verifier and the registry."""

from __future__ import annotations

from app.core.jws import unverified_kid
from app.core.token_cache import VerifiedTokens, token_key


def test_expired_entries_go_first_then_the_oldest_half() -> None:
    cache: VerifiedTokens[int] = VerifiedTokens(lambda exp: exp, max_entries=4)
    for name, exp in (("a", 100), ("b", 500), ("c", 100), ("d", 500)):
        cache.put(token_key(name), exp, now=0)
    cache.put(token_key("e"), 500, now=200)  # full: a and c have expired and make room
    assert len(cache) == 3
    assert cache.get(token_key("a")) is None
    assert cache.get(token_key("b")) == 500
    cache.put(token_key("f"), 500, now=200)
    cache.put(token_key("g"), 500, now=200)  # full of live entries: b and d, the oldest, go
    assert [cache.get(token_key(n)) for n in "bdefg"] == [None, None, 500, 500, 500]
    cache.prune(600)
    assert len(cache) == 0


def test_keys_hash_any_string() -> None:
    assert token_key("x") != token_key("y")
    assert len(token_key("\ud800")) == 32  # a lone surrogate is hashed, not an error


def test_unverified_kid() -> None:
    assert unverified_kid("eyJraWQiOiJrMSJ9.e30.e30") == "k1"  # {"kid":"k1"}
    assert unverified_kid("eyJraWQiOjF9.e30.e30") is None  # {"kid":1}
    assert unverified_kid("W10.e30.e30") is None  # []
    assert unverified_kid("not a jws") is None
