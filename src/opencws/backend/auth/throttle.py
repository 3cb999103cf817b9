"""Sign-in throttling: failed sign-ins are counted per user name and per client address (token buckets
refilled over `window` seconds); once a bucket is empty, sign-ins for that name or from that address get
429 with the seconds to wait, whether the password is right or not, so guessing is slow either way."""

from __future__ import annotations

import threading
import time


class SignInThrottle:
    def __init__(self, per_user: int, per_address: int, window: float) -> None:
        self.limits = {"user": per_user, "address": per_address}
        self.window = window
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (kind, who) → (failures, at)
        self._lock = threading.Lock()

    def _level(self, kind: str, who: str, now: float) -> float:
        limit = self.limits[kind]
        failures, at = self._buckets.get((kind, who), (0.0, now))
        return max(0.0, failures - (now - at) * limit / self.window)

    def wait(self, user: str, address: str) -> tuple[str, float] | None:
        """None when a sign-in may be tried; else what is blocked ("user" or "address") and for how long."""
        now = time.monotonic()
        with self._lock:
            for kind, who in (("user", user), ("address", address)):
                limit = self.limits[kind]
                if limit <= 0:
                    continue
                level = self._level(kind, who, now)
                if level > limit - 1:
                    return kind, (level - (limit - 1)) * self.window / limit
        return None

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > 100_000:  # a flood of names: forget the drained buckets
                for k in [k for k in self._buckets if self._level(k[0], k[1], now) == 0]:
                    del self._buckets[k]
            for kind, who in (("user", user), ("address", address)):
                self._buckets[(kind, who)] = (self._level(kind, who, now) + 1, now)

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._buckets.pop(("user", user), None)
