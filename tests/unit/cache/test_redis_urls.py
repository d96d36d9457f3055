"""Sentinel URLs: what ``AGENTAUTH_REDIS_URL=redis+sentinel://…`` may say, and the refusals."""

from __future__ import annotations

import pytest

from app.cache.redis_urls import SentinelAddress, parse_sentinel_url
from app.settings import CommonSettings


def test_sentinels_a_service_a_database_and_passwords_are_read() -> None:
    url = "redis+sentinel://app:s%40cret@10.0.0.1:26379,sentinel-b:26380/agentauth/2"
    assert parse_sentinel_url(url + "?sentinel_password=watch") == SentinelAddress(
        sentinels=(("10.0.0.1", 26379), ("sentinel-b", 26380)),
        service="agentauth",
        db=2,
        username="app",
        password="s@cret",
        sentinel_password="watch",
    )


def test_the_database_defaults_to_zero_and_credentials_to_none() -> None:
    address = parse_sentinel_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (address.db, address.username, address.password) == (0, None, None)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis+sentinel://127.0.0.1/agentauth", "host:port"),
        ("redis+sentinel://127.0.0.1:0/agentauth", "host:port"),
        ("redis+sentinel://:26379/agentauth", "host:port"),
        ("redis+sentinel://127.0.0.1:26379", "no service"),
        ("redis+sentinel://127.0.0.1:26379/agentauth/x", "a number"),
        ("redis+sentinel://127.0.0.1:26379/agentauth?timeout=1", "unknown"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_with_its_reason(url: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_sentinel_url(url)


def test_the_settings_refuse_a_malformed_sentinel_url_at_start() -> None:
    with pytest.raises(ValueError, match="no service"):
        CommonSettings(redis_url="redis+sentinel://127.0.0.1:26379")
