"""Scrubbing secrets out of command-line arguments before an event leaves the agent.

Which arguments are secret is decided by name only (a value is never guessed at from its looks), compared
case-insensitively word by word: a name is cut into words at `-`, `_`, `.` and camelCase boundaries, and it
is secret when the words of a listed name appear in it consecutively. With `password` and `api_key` listed,
`--db-password`, `MYSQL_PASSWORD`, `apiKey`, `X-Api-Key` and also `--password-file` are secret (masking a
path costs less than leaking a password); `--passwords` and `--author` (with `auth` listed) are not, since
`passwords` and `author` are other words.

The value is replaced by `********` in these forms, and no others:

- `NAME=value`, `-NAME=value`, `--NAME=value` (options and environment assignments: `env TOKEN=x cmd`);
- `NAME:value`, `-NAME:value`, `--NAME:value` (headers such as `Authorization: Bearer x`, openssl's `pass:x`);
- `-NAME value`, `--NAME value`: the argument after an option that is exactly a secret name is replaced,
  whatever it looks like (a secret may start with a dash);
- `scheme://user:password@host` anywhere in an argument: the password part only.

Not scrubbed: a bare `NAME value` without a dash (`passwd alice` names a user, not a password), values glued
to a one-letter option (`-pSECRET`: what `-p` means depends on the program), and `user:password` pairs
outside a URL (curl's `-u user:pass`): list the option's name (`u`) to scrub the argument after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"

DEFAULT_SECRET_NAMES: tuple[str, ...] = (
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "api_key", "apikey", "access_key",
    "secret_key", "private_key", "auth", "authorization", "credential", "credentials", "client_secret",
    "session_key", "cookie",
)
"""Secret-like names scrubbed by default (`-`, `_` and camelCase spellings of each match alike)."""

_HEAD = re.compile(r"-{0,2}([A-Za-z_][A-Za-z0-9_.\-]*)")
"""What stands before `=`/`:` in an assignment, or is a whole option: up to two dashes and a name."""
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)([^/\s]+)@")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[-_.\s]+")

_CACHE_LIMIT = 4096


def name_words(name: str) -> tuple[str, ...]:
    """`--DB_apiKey.value` -> ('db', 'api', 'key', 'value')."""
    return tuple(w for w in _SEPARATORS.split(_CAMEL.sub("_", name).lower()) if w)


class ArgScrubber:
    """Replaces the values of secret-looking arguments by `MASK` (see the module docstring for the forms)."""

    def __init__(self, names: Iterable[str] = DEFAULT_SECRET_NAMES):
        patterns = set()
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"secret name must be a string, got {name!r}")
            words = name_words(name)
            if not words:
                raise ValueError(f"secret name has no word in it: {name!r}")
            patterns.add(words)
        self.names: tuple[tuple[str, ...], ...] = tuple(sorted(patterns))
        self._secret: dict[str, bool] = {}

    def is_secret_name(self, name: str) -> bool:
        """Whether a bare name (no dashes) is secret."""
        words = name_words(name)
        for pattern in self.names:
            n = len(pattern)
            if any(words[i:i + n] == pattern for i in range(len(words) - n + 1)):
                return True
        return False

    def _secret_head(self, head: str) -> bool:
        """`--db-password` -> True; `--color`, `/tmp/a` -> False. Cached: command lines repeat."""
        known = self._secret.get(head)
        if known is None:
            m = _HEAD.fullmatch(head)
            known = m is not None and self.is_secret_name(m.group(1))
            if len(self._secret) >= _CACHE_LIMIT:
                self._secret.clear()
            self._secret[head] = known
        return known

    def scrub(self, args: list[str]) -> list[str]:
        """The arguments with secret values masked; `args` itself (not a copy) when nothing was secret."""
        out: list[str] | None = None
        mask_next = False
        for i, arg in enumerate(args):
            new = arg
            if mask_next:
                new = MASK
                mask_next = False
            else:
                eq = arg.find("=")
                colon = arg.find(":")
                sep = eq if colon < 0 or 0 <= eq < colon else colon
                if sep > 0 and sep + 1 < len(arg) and self._secret_head(arg[:sep]):
                    new = arg[:sep + 1] + MASK
                elif sep < 0 and arg[:1] == "-" and self._secret_head(arg):
                    mask_next = True
                elif "://" in arg:
                    new = _URL_PASSWORD.sub(_mask_url_password, arg)
            if new != arg:
                if out is None:
                    out = list(args[:i])
                out.append(new)
            elif out is not None:
                out.append(arg)
        return args if out is None else out


def _mask_url_password(m: re.Match[str]) -> str:
    return m.group(1) + MASK + "@"
