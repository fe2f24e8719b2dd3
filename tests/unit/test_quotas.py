"""Token buckets and the keyed table that remembers them past their connections, bounded."""

from __future__ import annotations

import pytest

from signalite.signaling.quotas import BucketTable, TokenBucket, table


def test_token_bucket_burst_then_rate():
    b = TokenBucket(3, 0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(1 / 3) and not b.take(1 / 3)


def test_table_limits_each_key_on_its_own():
    t: BucketTable[str] = BucketTable(2)
    assert [t.take("a", 0.0) for _ in range(3)] == [True, True, False]
    assert t.take("b", 0.0)


def test_table_forgets_refilled_buckets_and_only_those():
    t: BucketTable[int] = BucketTable(2)  # capacity 2: refilled 1 s after the last use
    for k in range(100):
        t.take(k, k * 0.01)  # keys 0..99 used over 0.99 s
    assert len(t) == 100
    t.take(-1, 1.5)  # keys used before 0.5 s have refilled
    assert len(t) == 100 - 51 + 1
    t.take(-1, 10.0)
    assert len(t) == 1


def test_a_drained_key_stays_drained_while_remembered():
    t: BucketTable[str] = BucketTable(1, capacity=1)
    assert t.take("a", 0.0)
    for i in range(1, 10):
        assert not t.take("a", i * 0.1)  # remembered: it refills at its rate, not at once
    assert t.take("a", 2.0)


def test_table_never_holds_more_than_max_keys():
    t: BucketTable[int] = BucketTable(1, max_keys=10)
    for k in range(100):
        t.take(k, 0.0)
    assert len(t) == 10


def test_no_rate_no_table():
    assert table(None) is None and table(0) is None
    with pytest.raises(ValueError):
        BucketTable(0)
