"""Errors of the rule language: where they are (file, rule, line, column) and a caret under the token."""

from __future__ import annotations


class SeclError(Exception):
    """A problem in a SECL expression or policy, located precisely.

    `pos`/`end` are character offsets in `expression`; `line`/`column` (1-based) are derived from them.
    `file` and `rule_id` are filled in by the policy loader.
    """

    def __init__(
        self,
        message: str,
        expression: str = "",
        pos: int | None = None,
        end: int | None = None,
        *,
        file: str | None = None,
        rule_id: str | None = None,
        kind: str = "rule",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.pos = pos
        self.end = (
            end
            if end is not None and pos is not None and end > pos
            else (pos + 1 if pos is not None else None)
        )
        self.file = file
        self.rule_id = rule_id
        self.kind = kind  # "rule", "macro" or "policy"
        self.file_line: int | None = None  # line in `file` (1-based) where the error is, when known
        # An unknown macro or constant (its name), for the policy loader to tell "unknown" from "invalid",
        # and the macros (outermost first) whose expansion led to the error.
        self.unknown_name: str | None = None
        self.macro_chain: list[str] = []

    @property
    def line(self) -> int | None:
        if self.pos is None:
            return None
        return self.expression.count("\n", 0, self.pos) + 1

    @property
    def column(self) -> int | None:
        if self.pos is None:
            return None
        return self.pos - (self.expression.rfind("\n", 0, self.pos) + 1) + 1

    @property
    def source_line(self) -> str:
        """The line of the expression that holds the error."""
        if self.pos is None:
            return ""
        start = self.expression.rfind("\n", 0, self.pos) + 1
        stop = self.expression.find("\n", self.pos)
        return self.expression[start : stop if stop >= 0 else len(self.expression)]

    @property
    def caret(self) -> str:
        """Spaces then carets under the offending token (tabs kept so the caret lines up)."""
        if self.pos is None or self.column is None:
            return ""
        line = self.source_line
        col = self.column - 1
        pad = "".join(c if c == "\t" else " " for c in line[:col])
        width = max(1, min((self.end or self.pos + 1) - self.pos, len(line) - col))
        return pad + "^" * width

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.file_line}" if self.file_line else self.file)
        if self.rule_id:
            parts.append(f"{self.kind} {self.rule_id}")
        if self.line is not None:
            parts.append(f"line {self.line}, column {self.column}")
        return ", ".join(parts)

    def format(self) -> str:
        """The full report: location and message, then the expression line and the caret."""
        where = self.location()
        head = f"{where}: {self.message}" if where else self.message
        if self.pos is None:
            return head
        return f"{head}\n    {self.source_line}\n    {self.caret}"

    def __str__(self) -> str:
        return self.format()

    def located(
        self, *, file: str | None = None, rule_id: str | None = None, kind: str | None = None
    ) -> SeclError:
        """Fill in the policy-level location (returns self)."""
        if file is not None and self.file is None:
            self.file = file
        if rule_id is not None and self.rule_id is None:
            self.rule_id = rule_id
        if kind is not None:
            self.kind = kind
        return self


class Unsupported(SeclError):
    """A valid rule that this engine cannot run: it needs an event type the probe does not produce, or a
    field whose value the agent cannot know. The policy loader skips the rule with this reason (it is not
    an error of the policy). `group` names the kind of reason (for `rules check`'s summary), `subject` what is
    missing (`connect`, `container.created_at`)."""

    def __init__(self, message: str, expression: str = "", pos: int | None = None, end: int | None = None,
                 *, group: str, subject: str) -> None:
        super().__init__(message, expression, pos, end)
        self.group = group
        self.subject = subject
