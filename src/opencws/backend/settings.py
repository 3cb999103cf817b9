"""The backend's settings: command-line flags over an optional YAML file over the defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from opencws.backend.store.journal import JournalLimits

MiB = 1 << 20


class SettingsError(ValueError):
    """A configuration value the backend cannot use."""


@dataclass
class Settings:
    data_dir: str = "./opencws-data"
    store: str | None = None  # None: the embedded store under data_dir; else clickhouse://...
    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False  # listen on a non-loopback address without TLS
    # Flush every insert to the disk before acknowledging it (survives a power loss; costs an fsync per
    # request). Without it, an acknowledged event survives a crash of the backend, not of the machine.
    fsync: bool = False
    # The journal in front of the store (see docs/backend.md, Durability): a request is acknowledged once
    # journaled; the journaled rows go into the store in big inserts, when `journal_flush_rows` rows or
    # `journal_flush_bytes` bytes wait, or the oldest has waited `journal_flush_interval` seconds. Past
    # `journal_max_bytes` bytes waiting (the store is down or slower than the intake) the intake answers 503.
    journal_flush_rows: int = 50_000
    journal_flush_bytes: int = 128 * MiB
    journal_flush_interval: float = 1.0
    journal_max_bytes: int = 1024 * MiB
    # Intake limits.
    max_body_bytes: int = 16 * MiB  # as sent (compressed or not)
    max_decompressed_bytes: int = 128 * MiB
    max_events_per_request: int = 100_000
    max_depth: int = 32  # JSON nesting of one event (or envelope)
    # Requests per second and burst, per API key (0: no limit).
    rate_limit: float = 100.0
    rate_burst: int = 200
    # Searches.
    max_page: int = 1000
    # Browser sessions: ended after this many seconds unused, or since sign-in.
    session_idle_seconds: float = 3600.0
    session_lifetime_seconds: float = 12 * 3600.0
    # Sign-in: failed attempts allowed per user name and per client address within the window (seconds),
    # then 429 until the window's share of attempts has passed (0: no limit).
    signin_failures_per_user: int = 5
    signin_failures_per_address: int = 20
    signin_failure_window: float = 300.0
    # Retention: days kept (0: forever), checked every `retention_interval` seconds.
    retention_days: int = 30
    retention_interval: float = 3600.0
    # Detection: directories (or files) of rule files added to the shipped ones (a same-named file replaces
    # a shipped one), and the webhook every new signal is POSTed to.
    detection_rules: list[str] = dataclasses.field(default_factory=list)
    webhook_url: str | None = None
    webhook_header: str | None = None  # "Name: value", sent with every delivery (a shared secret)
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 8
    webhook_backoff: float = 2.0  # seconds before the first retry, doubled at each

    def journal_limits(self) -> JournalLimits:
        return JournalLimits(
            flush_rows=self.journal_flush_rows, flush_bytes=self.journal_flush_bytes,
            flush_interval=self.journal_flush_interval, max_bytes=self.journal_max_bytes,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | None, overrides: dict[str, Any]) -> Settings:
        values: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    loaded = yaml.safe_load(f) or {}
            except OSError as e:
                raise SettingsError(f"cannot read {path}: {e.strerror}") from None
            except yaml.YAMLError as e:
                raise SettingsError(f"{path}: invalid YAML: {e}") from None
            if not isinstance(loaded, dict):
                raise SettingsError(f"{path}: expected a mapping of settings")
            values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        s = cls(**values)
        s.check()
        return s

    def check(self) -> None:
        for name in (
            "max_body_bytes",
            "max_decompressed_bytes",
            "max_events_per_request",
            "max_depth",
            "max_page",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise SettingsError(f"{name} must be a positive integer, got {v!r}")
        for name in ("session_idle_seconds", "session_lifetime_seconds", "signin_failure_window"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                raise SettingsError(f"{name} must be a number > 0, got {v!r}")
        for name in ("signin_failures_per_user", "signin_failures_per_address"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise SettingsError(f"{name} must be an integer >= 0, got {v!r}")
        if isinstance(self.detection_rules, str):
            self.detection_rules = [self.detection_rules]
        if not isinstance(self.detection_rules, list) or not all(
            isinstance(d, str) for d in self.detection_rules
        ):
            raise SettingsError(
                f"detection_rules must be a list of directories, got {self.detection_rules!r}"
            )
        if not isinstance(self.webhook_max_attempts, int) or self.webhook_max_attempts < 1:
            raise SettingsError(
                f"webhook_max_attempts must be an integer >= 1, got {self.webhook_max_attempts!r}"
            )
        for name in ("rate_limit", "retention_interval", "webhook_timeout", "webhook_backoff"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise SettingsError(f"{name} must be a number >= 0, got {v!r}")
        if not isinstance(self.retention_days, int) or self.retention_days < 0:
            raise SettingsError(f"retention_days must be an integer >= 0, got {self.retention_days!r}")
        try:
            self.journal_limits().check()
        except ValueError as e:
            raise SettingsError(str(e).replace("journal ", "journal_")) from None
        if self.journal_max_bytes < self.max_decompressed_bytes:
            raise SettingsError(
                f"journal_max_bytes ({self.journal_max_bytes}) must be at least max_decompressed_bytes "
                f"({self.max_decompressed_bytes}): a request that size could never be journaled"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("--tls-cert and --tls-key go together")
