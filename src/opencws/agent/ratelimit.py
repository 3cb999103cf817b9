"""Per-rule rate limiting: a token bucket per rule, so that one noisy rule cannot drown the others' events.

A bucket holds at most `burst` tokens and gains `rate` tokens per second; an event passes when it can take a
whole token. Time comes from an injectable clock (`time.monotonic` by default: wall-clock steps must neither
starve nor flood a bucket), or from the `now` argument, so that a batch of events shares one clock read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


class TokenBucket:
    """`rate` tokens per second, at most `burst` in the bucket; starts full."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if not rate >= 0:  # also refuses NaN
            raise ValueError(f"rate must be a number of events per second >= 0, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self, now: float | None = None) -> bool:
        """Take one token if there is one. A clock that goes backwards refills nothing (and is not followed)."""
        if now is None:
            now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:
            self._last = now
            tokens = self._tokens + elapsed * self.rate
            self._tokens = tokens if tokens < self.burst else float(self.burst)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class RuleRateLimiter:
    """One token bucket per rule id, made the first time the rule matches.

    `per_rule` overrides the default (rate, burst) for the rules it names; below it, a rule's own `every`
    (`set_intervals`). `limited` counts, per rule id, the
    events refused since the limiter was made (the agent reports them; nothing is dropped silently).
    """

    def __init__(self, default_rate: float, default_burst: int,
                 per_rule: Mapping[str, tuple[float, int]] | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        TokenBucket(default_rate, default_burst, clock)  # validates the default before any rule uses it
        self.default_rate = default_rate
        self.default_burst = default_burst
        self.per_rule: dict[str, tuple[float, int]] = {}
        for rule_id, (rate, burst) in (per_rule or {}).items():
            try:
                TokenBucket(rate, burst, clock)
            except ValueError as e:
                raise ValueError(f"rate limit of rule {rule_id!r}: {e}") from None
            self.per_rule[rule_id] = (rate, burst)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self.limited: dict[str, int] = {}
        self.intervals: dict[str, tuple[float, int]] = {}

    def set_intervals(self, every_ns: Mapping[str, int]) -> None:
        """Rules' own limits (a rule's `every`: at most one event per interval, no burst), below the
        configuration's `per_rule`, which wins. Buckets of rules whose limit changed start again."""
        new = {rid: (1e9 / ns, 1) for rid, ns in every_ns.items() if ns > 0}
        for rid in set(new) ^ set(self.intervals) | {r for r in new if new[r] != self.intervals.get(r)}:
            self._buckets.pop(rid, None)
        self.intervals = new

    def allow(self, rule_id: str, now: float | None = None) -> bool:
        bucket = self._buckets.get(rule_id)
        if bucket is None:
            rate, burst = self.per_rule.get(rule_id) or self.intervals.get(rule_id) \
                or (self.default_rate, self.default_burst)
            bucket = self._buckets[rule_id] = TokenBucket(rate, burst, self._clock)
        if bucket.allow(now):
            return True
        self.limited[rule_id] = self.limited.get(rule_id, 0) + 1
        return False
