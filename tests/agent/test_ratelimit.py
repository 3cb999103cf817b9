"""Token buckets and the per-rule limiter, driven by an injected clock."""

from __future__ import annotations

import pytest

from opencws.agent.ratelimit import RuleRateLimiter, TokenBucket


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def take(bucket, n: int) -> int:
    return sum(bucket.allow() for _ in range(n))


def test_a_full_bucket_lets_a_burst_through_then_refuses():
    b = TokenBucket(rate=10, burst=5, clock=Clock())
    assert [b.allow() for _ in range(7)] == [True] * 5 + [False] * 2


def test_tokens_come_back_at_the_rate():
    clock = Clock()
    b = TokenBucket(rate=4, burst=5, clock=clock)  # times below are exact in binary floating point
    assert take(b, 5) == 5
    clock.t += 0.25  # one token
    assert take(b, 3) == 1
    clock.t += 0.625  # two and a half tokens: two whole ones
    assert take(b, 3) == 2
    clock.t += 0.125  # the half left over plus another half
    assert take(b, 3) == 1


def test_an_idle_bucket_never_holds_more_than_its_burst():
    clock = Clock()
    b = TokenBucket(rate=100, burst=3, clock=clock)
    clock.t += 3600
    assert take(b, 10) == 3


def test_the_now_argument_overrides_the_clock():
    b = TokenBucket(rate=1, burst=1, clock=Clock(0.0))
    assert b.allow(now=0.0) and not b.allow(now=0.5)
    assert b.allow(now=1.0)


def test_a_clock_going_backwards_refills_nothing():
    clock = Clock(50.0)
    b = TokenBucket(rate=1, burst=1, clock=clock)
    assert b.allow()
    clock.t = 10.0
    assert not b.allow()
    clock.t = 50.5  # still only half a second after the last real progress
    assert not b.allow()
    clock.t = 51.0
    assert b.allow()


def test_a_zero_rate_allows_the_burst_once():
    clock = Clock()
    b = TokenBucket(rate=0, burst=2, clock=clock)
    clock.t += 1e6
    assert take(b, 5) == 2


@pytest.mark.parametrize(("rate", "burst", "message"), [
    (-1, 1, "rate must be"), (float("nan"), 1, "rate must be"), (1, 0, "burst must be"),
    (1, 1.5, "burst must be"), (1, True, "burst must be"),
])
def test_bad_bucket_settings_are_refused(rate, burst, message):
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate, burst)


def test_each_rule_has_its_own_bucket_and_counts_what_it_refused():
    limiter = RuleRateLimiter(1, 2, clock=Clock())
    assert [limiter.allow("a") for _ in range(4)] == [True, True, False, False]
    assert [limiter.allow("b") for _ in range(3)] == [True, True, False]
    assert limiter.limited == {"a": 2, "b": 1}


def test_a_rule_can_have_its_own_rate_and_burst():
    clock = Clock()
    limiter = RuleRateLimiter(1, 1, {"noisy": (128.0, 10)}, clock=clock)
    assert sum(limiter.allow("noisy") for _ in range(20)) == 10
    assert sum(limiter.allow("other") for _ in range(20)) == 1
    clock.t += 0.0625  # 8 tokens for the noisy rule, 1/16 for the others
    assert sum(limiter.allow("noisy") for _ in range(20)) == 8
    assert sum(limiter.allow("other") for _ in range(20)) == 0
    assert limiter.limited == {"noisy": 22, "other": 39}


def test_bad_limiter_settings_name_the_rule():
    with pytest.raises(ValueError, match=r"rule 'r1'.*burst must be"):
        RuleRateLimiter(1, 1, {"r1": (1.0, 0)})
    with pytest.raises(ValueError, match="rate must be"):
        RuleRateLimiter(-5, 1)


def test_a_rules_every_lets_one_event_through_per_interval_below_the_configuration():
    """Datadog's `every: 10s`: one alert per ten seconds, no burst; a per-rule setting of the configuration
    wins over it; other rules keep the default."""
    clock = Clock()
    limiter = RuleRateLimiter(100, 50, {"configured": (2.0, 2)}, clock=clock)
    limiter.set_intervals({"quiet": 10 * 10**9, "configured": 10 * 10**9})
    assert [limiter.allow("quiet") for _ in range(3)] == [True, False, False]
    clock.t += 9.5
    assert not limiter.allow("quiet")
    clock.t += 0.5
    assert limiter.allow("quiet") and not limiter.allow("quiet")
    assert [limiter.allow("configured") for _ in range(3)] == [True, True, False]
    assert sum(limiter.allow("other") for _ in range(60)) == 50
    limiter.set_intervals({})  # reloaded without it: back to the default
    assert sum(limiter.allow("quiet") for _ in range(60)) == 50
