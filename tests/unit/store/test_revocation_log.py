"""WAL positions as heartbeats carry them: numbers that order like PostgreSQL's ``pg_lsn``."""

from __future__ import annotations

import pytest

from app.store.revocation_log import wal_position


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("0/0", "0/1"), ("0/FFFFFFFF", "1/0"), ("16/B374D848", "16/B374D849"), ("9/0", "10/0")],
)
def test_positions_order_like_the_log(lower: str, higher: str) -> None:
    assert wal_position(lower) < wal_position(higher)


def test_a_position_is_its_two_halves() -> None:
    assert wal_position("16/B374D848") == (0x16 << 32) | 0xB374D848
