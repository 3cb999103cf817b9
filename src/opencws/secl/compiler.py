"""Type checking and compilation of a SECL syntax tree into Python closures.

Each node becomes a `Val`: its static type and either a constant or a function of the event. Rules are
compiled once; evaluating a rule is a call of nested closures (no tree walk per event). Constant operands
are folded, `&&`/`||` operands are ordered cheapest first (they have no side effects, so the result is the
same) and short-circuit.

The same compiler does partial evaluation: with `bound` set, bound fields are constants, every other
field is *unknown*, and `&&`/`||`/`!` follow three-valued logic, so a rule folds to false exactly when no
event with those field values can match it.
"""

from __future__ import annotations

import difflib
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from opencws.model.names import bpf_helper_name
from opencws.secl import ast, registers
from opencws.secl.approvers import Approver, gate_score, leaf_gates
from opencws.secl.constants import CONSTANTS, ERRNO_NAMES
from opencws.secl.errors import SeclError, Unsupported
from opencws.secl.fields import (
    BOOL,
    GETTER_ENV,
    INT,
    REGISTRY,
    STRING,
    UNSUPPORTED_EVENT_TYPES,
    Field,
    Registry,
    inline_expr,
    noted_reason,
    unavailable_reason,
)
from opencws.secl.matchers import RegexError, build_matcher, compile_regex
from opencws.secl.parser import ParseResult, parse
from opencws.secl.paths import path_value_error
from opencws.secl.variables import VariableTable

ARRAY = "array"
_RULE_VARIABLES = " (a variable is an event field, a built-in, or one that a rule's `set` action declares)"


def _event_type_is(e: Any, event_type: str) -> bool:
    evt = getattr(e, "evt", None)
    return evt is not None and evt.name == event_type


_VARIABLE_IN_STRING = re.compile(r"\$\{([^}]*)\}")
# Deepest nesting accepted once macros are expanded (the compiler and the closures recurse).
MAX_EXPANDED_DEPTH = 250

_TYPE_NAMES = {STRING: "a string", INT: "an integer", BOOL: "a boolean", ARRAY: "a list"}
_PLURALS = {STRING: "strings", INT: "integers", BOOL: "booleans"}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!=", "=~": "=~", "!~": "!~"}


@dataclass(slots=True)
class Macro:
    id: str
    text: str
    node: ast.Node
    description: str = ""
    source: str | None = None


@dataclass(slots=True)
class ArrayConst:
    type: str
    items: list[tuple[str, Any]]  # (kind, value): kind "string" | "pattern" | "regex" | "int" | "bool"
    exact: frozenset[Any]
    patterns: list[str]
    regexes: list[str]


@dataclass(slots=True, eq=False)
class Val:
    type: str
    fn: Callable[[Any], Any] | None  # None only when unknown
    is_const: bool = False
    const: Any = None
    unknown: bool = False
    multi: bool = False
    kind: str = "string"  # of string constants: "string", "pattern" or "regex"
    duration: bool = False
    date: bool = False  # nanoseconds since the epoch (a date field, or one plus or minus a duration)
    field: Field | None = None
    cost: int = 0
    approvers: dict[str, frozenset[Approver]] = dc_field(default_factory=dict)
    gates: tuple[frozenset[tuple[str, Approver]], ...] = ()
    tri: bool = False  # partial evaluation: fn may return None ("unknown")
    code: str | None = None  # the same as a Python expression of `e` (None: call `fn`)
    bitand: tuple[str, int] | None = None
    array: ArrayConst | None = None
    node: ast.Node | None = None

    def describe(self) -> str:
        if self.field is not None:
            return f"'{self.field.name}' is {_type_name(self)}"
        return f"this is {_type_name(self)}"


def _type_name(v: Val) -> str:
    if v.type == STRING and v.is_const and v.kind != "string":
        return "a pattern" if v.kind == "pattern" else "a regular expression"
    name = _TYPE_NAMES[v.type]
    return f"{name} list" if v.multi else name


def _const(typ: str, value: Any, node: ast.Node | None, **kw: Any) -> Val:
    return Val(typ, lambda e, c=value: c, is_const=True, const=value, node=node, **kw)


def _unknown(typ: str, node: ast.Node | None, multi: bool = False) -> Val:
    return Val(typ, None, unknown=True, multi=multi, node=node)


def _helper_hint(name: str) -> str:
    """The kernel's spelling of a bpf helper (`BPF_FUNC_probe_read`): point at Datadog's (`BPF_PROBE_READ`)."""
    if name.startswith("BPF_FUNC_") and bpf_helper_name(name) in CONSTANTS:
        return f" (bpf helpers are spelled as in Datadog: '{bpf_helper_name(name)}')"
    return ""


def _now(e: Any) -> int:
    d = getattr(e, "date", None)
    return d if d else time.time_ns()


@dataclass
class CompiledRule:
    """A compiled expression: `evaluate(event)` is the rule's condition on an event of `event_type`."""

    expression: str
    event_type: str | None  # None: a search expression naming no event type, or several
    fn: Callable[[Any], bool]
    approvers: dict[str, frozenset[Approver]]
    fields: frozenset[str]
    cost: int
    parsed: ParseResult
    warnings: list[SeclError] = dc_field(default_factory=list)
    # RuleSet's prefilter: necessary conditions (all must hold), each a set of (field, approver) pairs of
    # which at least one holds. Unlike `approvers` (one field each), a gate may span fields (`a || b`).
    gates: tuple[frozenset[tuple[str, Approver]], ...] = ()
    # The same condition as nested closures (`fn` is generated code when the rule allows): for checks.
    closure: Callable[[Any], bool] | None = None
    # The event types the expression can match: its event type for a rule; for a search expression (see
    # `compile_search`) the types it names, or None when it names none (it applies to every event).
    event_types: frozenset[str] | None = None
    # The policy set's rule variables the expression may read (for recompilations: partial evaluation).
    variables: VariableTable | None = None

    def evaluate(self, event: Any) -> bool:
        """The condition on `event`; false on an event of a type the expression does not apply to."""
        types = self.event_types
        if types is not None:
            evt = getattr(event, "evt", None)
            if evt is None or evt.name not in types:
                return False
        return bool(self.fn(event))


class Compiler:
    def __init__(
        self,
        text: str,
        macros: dict[str, Macro] | None = None,
        *,
        registry: Registry = REGISTRY,
        bound: dict[str, Any] | None = None,
        check_event_type: bool = True,
        search: bool = False,
        variables: VariableTable | None = None,
    ) -> None:
        self.text = text
        self.variables = variables
        self.macros = macros or {}
        self.reg = registry
        self.bound = bound
        self.check_event_type = check_event_type
        # A search expression may name no event type, or several; with several, each condition is false on events
        # of the types it does not read (`guard_leaves`, set for a second compilation).
        self.search = search
        self.guard_leaves = False
        self.event_types: dict[str, tuple[str, ast.Node]] = {}
        self.event_type: str | None = None
        self.fields_used: set[str] = set()
        self.macro_stack: list[str] = []
        self.depth = 0
        # Code generation: the rule becomes one Python function; names in `env` are its constants.
        self.codegen = bound is None
        self.env: dict[str, Any] = dict(GETTER_ENV)
        self.uid = 0
        self.warnings: list[SeclError] = []
        self.root_text = text
        # Registers (`process.ancestors[A]`): uses per register in the whole expression, uses per node, and the
        # registers already quantified ("there is an ancestor A such that ...").
        self.reg_totals: dict[str, int] | None = None
        self.reg_counter = registers.Counter(self.macros)
        self.closed_regs: set[str] = set()

    def warn(self, msg: str, pos: int, end: int) -> None:
        """A warning located in the text being compiled, when it is the rule's (or the checked macro's) own: a
        macro's warnings are reported once, with the macro."""
        if self.text is self.root_text:
            self.warnings.append(SeclError(msg, self.text, pos, end))

    # --- errors -------------------------------------------------------------------------------------

    def error(self, msg: str, node: ast.Node | None) -> SeclError:
        if node is None:
            return SeclError(msg, self.text, 0, len(self.text))
        return SeclError(msg, self.text, node.pos, node.end)

    # --- code generation ----------------------------------------------------------------------------

    def ref(self, obj: Any) -> str:
        """A name for `obj` in the generated code's globals."""
        self.uid += 1
        name = f"_k{self.uid}"
        self.env[name] = obj
        return name

    def code(self, v: Val) -> str:
        """`v` as a Python expression of the event `e`: its generated code, a literal, or a call of `fn`."""
        if v.code is not None:
            return v.code
        if v.is_const:
            c = v.const
            return repr(c) if type(c) in (int, str, bool) else self.ref(c)
        return f"{self.ref(v.fn)}(e)"

    def tag(self) -> str:
        self.uid += 1
        return str(self.uid)

    def function(self, v: Val) -> Callable[[Any], Any]:
        """The compiled rule: one generated function when possible, else the closures."""
        fn = self.truth(v)
        assert fn is not None
        if not self.codegen or v.code is None:
            return fn
        try:
            return eval(f"lambda e: {v.code}", self.env)
        except (SyntaxError, RecursionError, MemoryError):  # pragma: no cover - too deep for Python's parser
            return fn

    # --- entry points -------------------------------------------------------------------------------

    def compile_rule(self, parsed: ParseResult) -> CompiledRule:
        v = self.compile(parsed.node)
        if v.type != BOOL:
            raise self.error(f"a rule must be a boolean condition, but {v.describe()}", parsed.node)
        if self.event_type is None and not self.search:
            raise self.error(
                "the rule names no event type: use a field of an event type (such as open.file.path)",
                parsed.node,
            )
        fn = self.function(v)
        closure = self.truth(v)
        types: frozenset[str] | None = frozenset(self.event_types) or None
        if v.is_const and not v.const:
            types = frozenset()  # matches nothing
        return CompiledRule(
            self.text,
            self.event_type if not self.search or (types is not None and len(types) == 1) else None,
            fn,
            v.approvers,
            frozenset(self.fields_used),
            v.cost,
            parsed,
            gates=v.gates,
            closure=closure,
            warnings=list(self.warnings),
            event_types=types,
        )

    # --- dispatch -----------------------------------------------------------------------------------

    def compile(self, node: ast.Node) -> Val:
        if self.reg_totals is None:
            self.reg_totals = self.reg_counter.count(node)
        self.depth += 1
        if self.depth > MAX_EXPANDED_DEPTH:
            raise self.error(
                f"expression nested too deeply once macros are expanded (limit {MAX_EXPANDED_DEPTH})", node
            )
        try:
            if isinstance(node, ast.Logical):
                v = self.logical(node)
            elif isinstance(node, ast.Binary):
                v = self.binary(node)
            elif isinstance(node, ast.InArray):
                v = self.in_array(node)
            elif isinstance(node, ast.Unary):
                v = self.unary(node)
            elif isinstance(node, ast.Ident):
                v = self.ident(node)
            elif isinstance(node, ast.StrLit):
                v = self.string(node)
            elif isinstance(node, ast.IntLit):
                v = _const(INT, node.value, node, duration=node.duration)
            elif isinstance(node, ast.BoolLit):
                v = _const(BOOL, node.value, node)
            elif isinstance(node, ast.Variable):
                v = self.variable(node)
            elif isinstance(node, ast.ArrayLit):
                v = self.array(node)
            else:  # pragma: no cover
                raise self.error(f"unsupported syntax {type(node).__name__}", node)
        finally:
            self.depth -= 1
        if v.node is None:
            v.node = node
        if self.guard_leaves and v.type == BOOL and not v.unknown and self.is_condition(node):
            v = self.guarded(v, node)
        if self.reg_totals and v.type == BOOL:
            for reg, n in self.reg_counter.count(node).items():
                if n == self.reg_totals[reg] and reg not in self.closed_regs:
                    self.closed_regs.add(reg)
                    v = self.quantify(reg, v, node)
        return v

    # --- search expressions naming several event types ----------------------------------------------

    def is_condition(self, node: ast.Node) -> bool:
        """A condition that reads fields (a comparison, `in`, a boolean field), as opposed to `&&`/`||`/`!` or
        a macro standing for them."""
        if isinstance(node, ast.Binary):
            return node.op not in ("&", "|", "^", "+", "-")
        if isinstance(node, ast.Ident | ast.Variable):
            return node.name not in self.macros
        return isinstance(node, ast.InArray)

    def node_types(self, node: ast.Node) -> frozenset[str]:
        """Event types of the fields read in `node` (macros expanded)."""
        out: set[str] = set()
        stack = [node]
        seen: set[str] = set()
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Logical):
                stack.extend(n.operands)
            elif isinstance(n, ast.Binary):
                stack += [n.left, n.right]
            elif isinstance(n, ast.InArray):
                stack += [n.operand, n.array]
            elif isinstance(n, ast.Unary):
                stack.append(n.operand)
            elif isinstance(n, ast.StrLit) and n.kind == "string":
                for m in _VARIABLE_IN_STRING.finditer(n.value):
                    f = self.reg.get(m.group(1).strip())
                    if f is not None and f.event_type is not None:
                        out.add(f.event_type)
            elif isinstance(n, ast.Ident | ast.Variable):
                macro = self.macros.get(n.name)
                if macro is not None and isinstance(n, ast.Ident):
                    if macro.id not in seen:
                        seen.add(macro.id)
                        stack.append(macro.node)
                    continue
                f = self.reg.get(registers.split(n.name)[0] if "[" in n.name else n.name)
                if f is not None and f.event_type is not None:
                    out.add(f.event_type)
        return frozenset(out)

    def guarded(self, v: Val, node: ast.Node) -> Val:
        """`v`, false on events not of every event type it reads (a search naming several types)."""
        types = self.node_types(node)
        if not types:
            return v
        if len(types) > 1:
            return _const(BOOL, False, node)  # no event has two types
        (t,) = types
        if v.is_const:
            const = bool(any(v.const) if v.multi else v.const)
            return Val(BOOL, lambda e: const and _event_type_is(e, t), cost=1, node=node)
        if v.tri:
            return v
        inner = self.truth(v)
        assert inner is not None
        return Val(
            BOOL,
            lambda e: _event_type_is(e, t) and inner(e),
            cost=v.cost + 1,
            approvers=v.approvers,
            gates=v.gates,
            node=node,
        )

    # --- registers ----------------------------------------------------------------------------------

    def quantify(self, reg: str, v: Val, node: ast.Node) -> Val:
        """`v` holds every use of register `reg`: true when it holds for some ancestor bound to `reg`."""
        if self.bound is not None or v.unknown:
            # Partial evaluation: register fields are unknown, so `v` is already an over-approximation.
            return v
        if v.is_const:
            return v if not v.const else Val(BOOL, registers.any_ancestor, cost=10, node=node)
        inner = self.truth(v)
        assert inner is not None
        fn = registers.exists(reg, inner)
        return Val(BOOL, fn, cost=v.cost * 4 + 10, approvers=v.approvers, gates=v.gates, node=node)

    def register_field(self, node: ast.Ident) -> Val:
        """`process.ancestors[_].x` (any ancestor, independently of the others) or `process.ancestors[A].x` (the
        ancestor bound to register A: every condition on A is about the same ancestor)."""
        name = node.name
        base, prefix, regs = registers.split(name)
        if len(regs) != 1:
            raise self.error(f"'{name}': a field takes one register ('[_]' or a name such as '[A]')", node)
        (reg,) = regs
        f = self.reg.get(base)
        if f is None:
            raise self.error(f"unknown field '{base}' (in '{name}')", node)
        if not f.iterator or prefix != registers.ITERATOR:
            raise self.error(
                f"'[{reg}]' can only follow an iterator ({registers.ITERATOR}), not '{prefix}'", node
            )
        if reg == "_":
            return self.field_val(f, node)
        self.fields_used.add(f.canonical)
        multi = self.reg.entry_multi(base)
        if self.bound is not None:
            v = _unknown(f.type, node, multi)
            v.field = f
            return v
        getter = self.reg.entry_getter(base)
        return Val(
            f.type,
            lambda e: getter(e.register(reg)),
            multi=multi,
            field=f,
            cost=f.cost,
            node=node,
            date=f.date,
        )

    # --- leaves -------------------------------------------------------------------------------------

    def ident(self, node: ast.Ident) -> Val:
        name = node.name
        macro = self.macros.get(name)
        if macro is not None:
            return self.expand(node, macro)
        f = self.reg.get(name)
        if f is not None:
            return self.field_val(f, node)
        if "[" in name:
            return self.register_field(node)
        if name in CONSTANTS:
            return _const(INT, CONSTANTS[name], node)
        self.check_supported(name, node)
        candidates = list(self.reg.fields) + list(self.macros) + list(CONSTANTS)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
        hint = _helper_hint(name) or (f" (did you mean '{close[0]}'?)" if close else "")
        what = "field" if "." in name else "macro or constant"
        err = self.error(f"unknown {what} '{name}'{hint}", node)
        if "." not in name:
            err.unknown_name = name
        raise err

    def check_supported(self, name: str, node: ast.Node) -> None:
        """Raise `Unsupported` for a field of an event type the probe does not produce, or one whose value the
        agent cannot know: the rule is valid Datadog SECL, this engine just cannot run it."""
        head = name.split(".", 1)[0]
        if "." in name and head in UNSUPPORTED_EVENT_TYPES:
            raise Unsupported(f"'{name}': '{head}' events are not supported by this engine", self.text,
                              node.pos, node.end, group="event type not supported", subject=head)
        why = unavailable_reason(name)
        if why is not None:
            raise Unsupported(f"'{name}': {why}", self.text, node.pos, node.end,
                              group="field the agent cannot know", subject=name)

    def user_variable(self, name: str, node: ast.Node) -> Val | None:
        """A variable set by rule actions (or a built-in such as `builtins.uuid4`), or None."""
        found = self.variables.reader(name) if self.variables is not None else None
        if found is None:
            return None
        typ, multi, read = found
        if self.bound is not None:
            return _unknown(typ, node, multi)  # partial evaluation: a variable can hold anything
        return Val(typ, read, multi=multi, cost=4, node=node)

    def field_val(self, f: Field, node: ast.Node) -> Val:
        if f.event_type is not None:
            self.note_event_type(f.event_type, f.name, node)
        canonical = f.canonical
        self.fields_used.add(canonical)
        note = noted_reason(canonical)
        if note is not None:
            self.warn(f"'{f.name}': {note}", node.pos, node.end)
        if self.bound is not None:
            if canonical in self.bound:
                # A parameter: the "event" given to the compiled function is the mapping of bound values.
                return Val(f.type, lambda vals, k=canonical: vals[k], multi=f.multi, field=f, node=node)
            v = _unknown(f.type, node, f.multi)
            v.field = f
            return v
        v = Val(f.type, f.getter, multi=f.multi, field=f, cost=f.cost, node=node, date=f.date)
        if self.codegen and f.source is not None and not f.multi:
            v.code = inline_expr(*f.source, f.type, self.tag())
        return v

    def note_event_type(self, event_type: str, name: str, node: ast.Node) -> None:
        if not self.check_event_type:
            return
        if self.event_type is None:
            self.event_type = event_type
            self.event_types[event_type] = (name, node)
        elif self.search:
            self.event_types.setdefault(event_type, (name, node))
        elif event_type != self.event_type:
            first, _ = self.event_types[self.event_type]
            raise self.error(
                f"the rule names several event types: '{name}' is a {event_type} field but '{first}' is a "
                f"{self.event_type} field (a rule applies to exactly one event type)",
                node,
            )

    def expand(self, node: ast.Ident, macro: Macro) -> Val:
        if macro.id in self.macro_stack:
            cycle = " → ".join([*self.macro_stack[self.macro_stack.index(macro.id) :], macro.id])
            raise self.error(f"cyclic macro: {cycle}", node)
        saved = self.text
        self.macro_stack.append(macro.id)
        self.text = macro.text
        try:
            v = self.compile(macro.node)
        except SeclError as e:
            if e.expression is macro.text:
                outer = SeclError(f"in macro '{macro.id}': {e.message}", saved, node.pos, node.end)
                outer.unknown_name = e.unknown_name
                outer.macro_chain = [macro.id, *e.macro_chain]
                raise outer from None
            raise
        finally:
            self.macro_stack.pop()
            self.text = saved
        v.node = node
        return v

    def variable(self, node: ast.Variable) -> Val:
        f = self.reg.get(node.name)
        if f is None:
            v = self.user_variable(node.name, node)
            if v is not None:
                return v
            self.check_supported(node.name, node)
            raise self.error(f"unknown variable '${{{node.name}}}'{_RULE_VARIABLES}", node)
        if f.multi:
            raise self.error(f"variable '${{{node.name}}}' has several values and cannot be used here", node)
        return self.field_val(f, node)

    def string(self, node: ast.StrLit, *, in_list: bool = False) -> Val:
        value = node.value
        if node.kind == "regex":
            try:
                compile_regex(value)
            except RegexError as e:
                raise SeclError(
                    f"invalid regular expression (RE2 syntax): {e}", self.text, node.pos + 2, node.end - 1
                ) from None
        # Only a closed `${...}` is a variable; an unclosed `${` is plain text (as Datadog's `\${[^}]*}`).
        var = _VARIABLE_IN_STRING.search(value) if node.kind != "regex" else None
        if var is not None and node.kind == "pattern":
            # Datadog expands variables in strings only: in a pattern `${...}` stays literal and silently
            # never matches, so it is refused here.
            off = node.pos + 2 + var.start()
            raise SeclError(
                "variables are not expanded inside patterns (~\"...\"): '${' would be matched literally; "
                'use a string with the variable ("/proc/${process.pid}/maps") or a pattern without it',
                self.text,
                off,
                off + 2,
            )
        if var is not None and in_list:
            # Datadog takes the strings of a list literally: `${...}` there is not expanded.
            off = node.pos + 1 + var.start()
            self.warn(
                f"'{var.group()}' is not expanded inside a list (as in Datadog, a list holds literal "
                f"values): it is matched as written; compare with the string alone to expand it",
                off,
                off + len(var.group()),
            )
        elif var is not None:
            return self.interpolated(node)
        return _const(STRING, value, node, kind=node.kind)

    def interpolated(self, node: ast.StrLit) -> Val:
        parts: list[Any] = []
        text = node.value
        i = 0
        for m in _VARIABLE_IN_STRING.finditer(text):
            if m.start() > i:
                parts.append(text[i : m.start()])
            name = m.group(1).strip()
            f = self.reg.get(name)
            if f is None:
                var = self.user_variable(name, node)
                if var is not None and not var.multi:
                    if var.unknown:
                        return _unknown(STRING, node)
                    parts.append(var.fn)
                    i = m.end()
                    continue
            if f is None or f.multi:
                off = node.pos + 1 + m.start()
                if f is None:
                    self.check_supported(name, node)
                raise SeclError(
                    f"unknown variable '${{{name}}}' in string", self.text, off, off + len(m.group())
                )
            v = self.field_val(f, node)
            if v.unknown:
                return _unknown(STRING, node)
            parts.append(v.fn)
            i = m.end()
        if i < len(text):
            parts.append(text[i:])
        pieces = tuple(parts)

        def interp(e: Any) -> str:
            return "".join(p if isinstance(p, str) else str(p(e)) for p in pieces)

        return Val(STRING, interp, cost=4, node=node)

    def array(self, node: ast.ArrayLit) -> Val:
        items: list[tuple[str, Any]] = []
        typ: str | None = None
        for item in node.items:
            if isinstance(item, ast.StrLit):
                v = self.string(item, in_list=True)
                kind, t = v.kind, STRING
                value: Any = v.const
            elif isinstance(item, ast.IntLit):
                kind, t, value = "int", INT, item.value
            elif isinstance(item, ast.BoolLit):
                kind, t, value = "bool", BOOL, item.value
            elif isinstance(item, ast.Ident) and item.name in CONSTANTS:
                kind, t, value = "int", INT, CONSTANTS[item.name]
            else:
                name = getattr(item, "name", "")
                raise self.error(f"'{name}' is not a literal value or a constant{_helper_hint(name)}", item)
            if typ is None:
                typ = t
            elif t != typ:
                raise self.error(f"array mixes {_PLURALS[typ]} and {_PLURALS[t]}", item)
            items.append((kind, value))
        exact = frozenset(v for k, v in items if k in ("string", "int", "bool"))
        arr = ArrayConst(
            typ or STRING,
            items,
            exact,
            [v for k, v in items if k == "pattern"],
            [v for k, v in items if k == "regex"],
        )
        return Val(ARRAY, None, is_const=True, array=arr, node=node)

    # --- operators ----------------------------------------------------------------------------------

    def truth(self, v: Val) -> Callable[[Any], bool] | None:
        """A boolean function of the event (multi-valued booleans: true if any value is)."""
        if v.fn is None or not v.multi:
            return v.fn
        g = v.fn
        return lambda e: any(g(e))

    def expect_bool(self, v: Val, what: str) -> None:
        if v.type != BOOL:
            raise self.error(f"{what} needs a boolean condition, but {v.describe()}", v.node)

    def logical(self, node: ast.Logical) -> Val:
        is_and = node.op == "and"
        sym = "&&" if is_and else "||"
        vals = [self.compile(o) for o in node.operands]
        for v in vals:
            self.expect_bool(v, f"'{sym}'")
        if is_and and self.reg_totals and self.bound is None:
            vals = self.hoist_registers(node, vals)
        return self.combine(vals, is_and, node)

    def hoist_registers(self, node: ast.Logical, vals: list[Val]) -> list[Val]:
        """In an `&&` holding every use of a register, quantify only the operands that use it:
        `exec.comm == "sh" && ancestors[A]... && ancestors[A]...` tests `exec.comm` once, not once per ancestor
        (the same truth: "some ancestor satisfies P and Q(a)" is "P and some ancestor satisfies Q(a)")."""
        assert self.reg_totals is not None
        count = self.reg_counter.count
        items = [(dict(count(o)), v) for o, v in zip(node.operands, vals, strict=True)]
        for reg, n in count(node).items():
            if n != self.reg_totals[reg] or reg in self.closed_regs:
                continue
            dep = [it for it in items if it[0].get(reg)]
            if len(dep) == len(items):
                continue  # nothing to hoist: compile() quantifies the whole node
            merged: dict[str, int] = {}
            for c, _ in dep:
                for r, k in c.items():
                    if r != reg:
                        merged[r] = merged.get(r, 0) + k
            self.closed_regs.add(reg)
            q = self.quantify(reg, self.combine([v for _, v in dep], True, node), node)
            items = [it for it in items if not it[0].get(reg)] + [(merged, q)]
        return [v for _, v in items]

    def combine(self, vals: list[Val], is_and: bool, node: ast.Node) -> Val:
        """`vals` (compiled boolean operands) joined by `&&` or `||`: folded, ordered cheapest first."""
        absorbing = not is_and  # value that decides the whole chain: false for &&, true for ||
        rest: list[Val] = []
        unknown = False
        for v in vals:
            if v.is_const:
                c = bool(any(v.const) if v.multi else v.const)
                if c == absorbing:
                    return _const(BOOL, absorbing, node)
                continue
            if v.unknown:
                unknown = True
                continue
            rest.append(v)
        approvers = self.merge_approvers(vals, is_and)
        if unknown and not rest:
            u = _unknown(BOOL, node)
            u.approvers = approvers
            return u
        if unknown or any(v.tri for v in rest):
            return self.kleene(rest, is_and, unknown, node)
        if not rest:
            return _const(BOOL, not absorbing, node)
        gates = _merge_gates(vals, is_and)
        rest.sort(key=lambda v: v.cost)
        fns = [self.truth(v) for v in rest]
        cost = sum(v.cost for v in rest)
        fn: Callable[[Any], bool]
        if len(fns) == 1:
            fn = fns[0]  # type: ignore[assignment]
        elif len(fns) == 2:
            a, b = fns
            fn = (lambda e: a(e) and b(e)) if is_and else (lambda e: a(e) or b(e))  # type: ignore[misc]
        elif len(fns) == 3:
            a, b, c = fns
            fn = (lambda e: a(e) and b(e) and c(e)) if is_and else (lambda e: a(e) or b(e) or c(e))  # type: ignore[misc]
        else:
            ft = tuple(fns)
            if is_and:

                def fn(e: Any) -> bool:
                    for f in ft:
                        if not f(e):  # type: ignore[misc]
                            return False
                    return True

            else:

                def fn(e: Any) -> bool:
                    for f in ft:
                        if f(e):  # type: ignore[misc]
                            return True
                    return False

        out = Val(BOOL, fn, cost=cost, approvers=approvers, gates=gates, node=node)
        if self.codegen:
            parts = [self.code(v) if not v.multi else f"{self.ref(self.truth(v))}(e)" for v in rest]
            out.code = "(" + (" and " if is_and else " or ").join(parts) + ")"
        return out

    def kleene(self, vals: list[Val], is_and: bool, unknown: bool, node: ast.Node) -> Val:
        """Partial evaluation: `&&`/`||` in three-valued logic (None is "unknown") at run time."""
        fns = tuple(self.truth(v) for v in vals)
        absorbing = not is_and

        def fn(vals_: Any) -> bool | None:
            result: bool | None = None if unknown else not absorbing
            for f in fns:
                x = f(vals_)  # type: ignore[misc]
                if x is None:
                    result = None
                elif bool(x) == absorbing:
                    return absorbing
            return result

        return Val(BOOL, fn, tri=True, node=node)

    @staticmethod
    def merge_approvers(vals: list[Val], is_and: bool) -> dict[str, frozenset[Approver]]:
        if is_and:
            out: dict[str, frozenset[Approver]] = {}
            for v in vals:
                for f, values in v.approvers.items():
                    if f not in out or len(values) < len(out[f]):
                        out[f] = values
            return out
        live = [v for v in vals if not (v.is_const and not v.const)]
        if not live:
            return {}
        common = set(live[0].approvers)
        for v in live[1:]:
            common &= set(v.approvers)
        return {f: frozenset().union(*(v.approvers[f] for v in live)) for f in common}

    def unary(self, node: ast.Unary) -> Val:
        v = self.compile(node.operand)
        operand = node.operand
        if (
            node.op == "-"
            and isinstance(operand, ast.Ident)
            and operand.name in ERRNO_NAMES
            and operand.name not in self.macros
        ):
            self.warn(
                f"'-{operand.name}' is {-v.const}: errno constants are negative, as in Datadog "
                f"(write '{operand.name}' to compare with a return value)",
                node.pos,
                node.end,
            )
        if node.op == "!":
            self.expect_bool(v, "'!'")
            if v.unknown:
                return _unknown(BOOL, node)
            f = self.truth(v)
            assert f is not None
            if v.is_const:
                return _const(BOOL, not f(None), node)
            if v.tri:
                return Val(BOOL, lambda e: None if (x := f(e)) is None else not x, tri=True, node=node)
            out = Val(BOOL, lambda e: not f(e), cost=v.cost, node=node)
            if self.codegen and not v.multi:
                out.code = f"(not {self.code(v)})"
            return out
        if v.type != INT or v.multi:
            raise self.error(f"'{node.op}' needs an integer, but {v.describe()}", v.node)
        if v.unknown:
            return _unknown(INT, node)
        g = v.fn
        assert g is not None
        fn = (lambda e: -g(e)) if node.op == "-" else (lambda e: ~g(e))
        if v.is_const:
            return _const(INT, fn(None), node, duration=v.duration)
        out = Val(INT, fn, cost=v.cost + 1, node=node)
        if self.codegen:
            out.code = f"({'-' if node.op == '-' else '~'}{self.code(v)})"
        return out

    def binary(self, node: ast.Binary) -> Val:
        left = self.compile(node.left)
        right = self.compile(node.right)
        if node.op in ("&", "|", "^"):
            return self.bitop(node, left, right)
        if node.op in ("+", "-"):
            return self.arith(node, left, right)
        return self.comparison(node, node.op, left, right)

    def bitop(self, node: ast.Binary, left: Val, right: Val) -> Val:
        for v in (left, right):
            if v.type != INT or v.multi:
                raise self.error(f"'{node.op}' needs integers, but {v.describe()}", v.node)
        if left.unknown or right.unknown:
            return _unknown(INT, node)
        op = {"&": operator.and_, "|": operator.or_, "^": operator.xor}[node.op]
        lf, rf = left.fn, right.fn
        assert lf is not None and rf is not None
        if left.is_const and right.is_const:
            return _const(INT, op(left.const, right.const), node)
        bitand = None
        if right.is_const:
            c = right.const
            fn = {"&": lambda e: lf(e) & c, "|": lambda e: lf(e) | c, "^": lambda e: lf(e) ^ c}[node.op]
            if node.op == "&" and left.field is not None:
                bitand = (left.field.canonical, c)
        elif left.is_const:
            c = left.const
            fn = {"&": lambda e: c & rf(e), "|": lambda e: c | rf(e), "^": lambda e: c ^ rf(e)}[node.op]
            if node.op == "&" and right.field is not None:
                bitand = (right.field.canonical, c)
        else:
            fn = lambda e: op(lf(e), rf(e))  # noqa: E731
        out = Val(INT, fn, cost=left.cost + right.cost + 1, bitand=bitand, node=node)
        if self.codegen:
            out.code = f"({self.code(left)} {node.op} {self.code(right)})"
        return out

    def arith(self, node: ast.Binary, left: Val, right: Val) -> Val:
        """`+` and `-` on integers and durations (as current Datadog): a date plus or minus a duration is a date
        (compared with a duration, its age); a date minus a date is a plain number of nanoseconds."""
        for v in (left, right):
            if v.type != INT or v.multi:
                raise self.error(f"'{node.op}' needs integers, but {v.describe()}", v.node)
        duration = left.duration or right.duration
        date = (left.date and not right.date) or (node.op == "+" and right.date and not left.date)
        if left.unknown or right.unknown:
            return _unknown(INT, node)
        lf, rf = left.fn, right.fn
        assert lf is not None and rf is not None
        if left.is_const and right.is_const:
            value = left.const + right.const if node.op == "+" else left.const - right.const
            return _const(INT, value, node, duration=duration)
        fn = (lambda e: lf(e) + rf(e)) if node.op == "+" else (lambda e: lf(e) - rf(e))
        cost = left.cost + right.cost + 1
        out = Val(INT, fn, cost=cost, node=node, duration=duration and not date, date=date)
        if self.codegen:
            out.code = f"({self.code(left)} {node.op} {self.code(right)})"
        return out

    def check_path(self, field_val: Val, kind: str, value: Any, node: ast.Node | None) -> None:
        """Refuse a value Datadog refuses for a path field (see `paths`)."""
        f = field_val.field
        if f is None or not f.path or not isinstance(value, str):
            return
        msg = path_value_error(f.name, kind, value)
        if msg is not None:
            raise self.error(msg, node)

    def comparison(self, node: ast.Node, op: str, left: Val, right: Val) -> Val:
        for v in (left, right):
            if v.type == ARRAY:
                raise self.error(f"a list can only be used with 'in' or 'not in', not with '{op}'", v.node)
        # Put the field (or the multi-valued side, or the non-literal side) on the left.
        swap = (
            (left.is_const and not right.is_const)
            or (left.is_const and left.type == STRING and left.kind != "string")
            or (right.multi and not left.multi)
        )
        if swap and not (right.is_const and right.type == STRING and right.kind != "string"):
            left, right, op = right, left, _MIRROR[op]
        if left.multi and right.multi:
            raise self.error(f"'{op}' cannot compare two lists", node)
        if op in ("=~", "!~"):
            if left.type != STRING:
                raise self.error(f"'{op}' matches strings, but {left.describe()}", left.node)
            if not (right.is_const or right.unknown) or right.type != STRING:
                raise self.error(
                    f"the right side of '{op}' must be a string, a pattern or a regular expression",
                    right.node,
                )
        elif op in ("==", "!="):
            if left.type != right.type:
                raise self.error(f"type mismatch: {left.describe()} but {right.describe()}", right.node)
            if right.type == STRING and right.kind != "string" and left.is_const:
                raise self.error("a pattern or regular expression must be compared with a field", node)
        else:
            for v in (left, right):
                if v.type != INT:
                    raise self.error(f"'{op}' compares integers, but {v.describe()}", v.node)
        if right.is_const and right.type == STRING:
            kind = "pattern" if op in ("=~", "!~") and right.kind == "string" else right.kind
            self.check_path(left, kind, right.const, right.node)
        if left.unknown or right.unknown or left.tri or right.tri:
            return _unknown(BOOL, node)
        lf, rf = left.fn, right.fn
        assert lf is not None and rf is not None
        negate = op in ("!=", "!~")
        multi = left.multi
        gen: str | None = None  # the test as a format string over {L}, {R} and the objects of gen_objs
        gen_objs: dict[str, Any] = {}
        age = False
        approvers: dict[str, frozenset[Approver]] = {}
        fn: Callable[[Any], bool]
        cost = left.cost + right.cost + 1
        if right.is_const and right.type == STRING and (right.kind != "string" or op in ("=~", "!~")):
            kind = "pattern" if right.kind == "string" else right.kind
            m = build_matcher([right.const]) if kind == "pattern" else build_matcher((), [right.const])
            cost += 2
            if multi:
                fn = (
                    (lambda e: not any(m(x) for x in lf(e)))
                    if negate
                    else (lambda e: any(m(x) for x in lf(e)))
                )
            else:
                fn = (lambda e: not m(lf(e))) if negate else (lambda e: m(lf(e)))
                gen = f"{'not ' if negate else ''}{{m}}({{L}})"
                gen_objs = {"m": m}
            if not negate and left.field is not None:
                approvers = {left.field.canonical: frozenset([Approver(kind, right.const)])}
        elif op in ("==", "!="):
            if right.is_const:
                c = right.const
                if multi:
                    fn = (lambda e: c not in lf(e)) if negate else (lambda e: c in lf(e))
                else:
                    fn = (lambda e: lf(e) != c) if negate else (lambda e: lf(e) == c)
                    gen = f"{{L}} {op} {{R}}"
                if not negate and left.field is not None:
                    approvers = {left.field.canonical: frozenset([Approver("exact", c)])}
            elif multi:
                fn = (lambda e: rf(e) not in lf(e)) if negate else (lambda e: rf(e) in lf(e))
            else:
                fn = (lambda e: lf(e) != rf(e)) if negate else (lambda e: lf(e) == rf(e))
                gen = f"{{L}} {op} {{R}}"
        else:
            cmp = _ORDER[op]
            if left.date and right.duration:
                # `process.created_at > 5s`: the age at the time of the event.
                get = lf
                if multi:  # an iterator (`process.ancestors.created_at`): the age of each value

                    def lf(e: Any) -> Any:
                        now = _now(e)
                        return [now - x for x in get(e)]

                else:

                    def lf(e: Any) -> Any:
                        return _now(e) - get(e)

                cost += 1
                age = True
            if right.is_const:
                c = right.const
                if multi:
                    fn = lambda e: any(cmp(x, c) for x in lf(e))  # noqa: E731
                elif op == ">":
                    fn = lambda e: lf(e) > c  # noqa: E731
                elif op == ">=":
                    fn = lambda e: lf(e) >= c  # noqa: E731
                elif op == "<":
                    fn = lambda e: lf(e) < c  # noqa: E731
                else:
                    fn = lambda e: lf(e) <= c  # noqa: E731
                if not multi and not age:
                    gen = f"{{L}} {op} {{R}}"
                if left.bitand is not None and ((op == ">" and c >= 0) or (op == ">=" and c > 0)):
                    approvers = {left.bitand[0]: frozenset([Approver("flags", left.bitand[1])])}
            elif multi:
                fn = lambda e: any(cmp(x, rf(e)) for x in lf(e))  # noqa: E731
            else:
                fn = lambda e: cmp(lf(e), rf(e))  # noqa: E731
                if not age:
                    gen = f"{{L}} {op} {{R}}"
        if op == "!=" and left.bitand is not None and right.is_const and right.const == 0:
            approvers = {left.bitand[0]: frozenset([Approver("flags", left.bitand[1])])}
        if left.is_const and right.is_const:
            return _const(BOOL, bool(fn(None)), node)
        out = Val(BOOL, fn, cost=cost, approvers=approvers, gates=leaf_gates(approvers), node=node)
        if self.codegen and gen is not None:
            names = {k: self.ref(obj) for k, obj in gen_objs.items()}
            out.code = "(" + gen.format(L=self.code(left), R=self.code(right), **names) + ")"
        return out

    def lists_meet(self, node: ast.InArray, left: Val, right: Val) -> Val:
        """`process.ancestors.pid in ${cgroup.pids}`: some value of the left list is in the right one (`not in`:
        none is)."""
        if left.type != right.type:
            raise self.error(f"type mismatch: {left.describe()} but {right.describe()}", right.node)
        lf, rf = left.fn, right.fn
        assert lf is not None and rf is not None
        if node.negated:
            return Val(BOOL, lambda e: set(lf(e)).isdisjoint(rf(e)), cost=left.cost + right.cost + 2, node=node)
        return Val(BOOL, lambda e: not set(lf(e)).isdisjoint(rf(e)), cost=left.cost + right.cost + 2, node=node)

    def in_array(self, node: ast.InArray) -> Val:
        left = self.compile(node.operand)
        word = "not in" if node.negated else "in"
        arr_node = node.array
        if isinstance(arr_node, ast.Ident) and "[" in arr_node.name and arr_node.name not in self.macros:
            # An iterator with a register: its values (`[_]`) or the bound ancestor's value (`[A]`).
            right = self.compile(arr_node)
            return self.comparison(node, "!=" if node.negated else "==", left, right)
        if isinstance(arr_node, ast.Variable | ast.Ident) and arr_node.name not in self.macros:
            f = self.reg.get(arr_node.name)
            if f is not None and f.multi:
                # A value in a multi-valued field (`10 in process.ancestors.pid`, `~"ba*" in exec.argv`): true when
                # any value is (matches) it; `not in`: when none does.
                return self.comparison(
                    node, "!=" if node.negated else "==", left, self.field_val(f, arr_node)
                )
        if isinstance(arr_node, ast.Variable) and arr_node.name not in self.reg:
            var = self.user_variable(arr_node.name, arr_node)
            if var is not None and var.multi:
                if left.multi and not (left.unknown or var.unknown):
                    return self.lists_meet(node, left, var)
                return self.comparison(node, "!=" if node.negated else "==", left, var)
        if isinstance(arr_node, ast.Variable):
            if arr_node.name not in self.reg:
                self.check_supported(arr_node.name, arr_node)
                raise self.error(f"unknown variable '${{{arr_node.name}}}'{_RULE_VARIABLES}", arr_node)
            raise self.error(
                f"a variable cannot be used as a list unless it names a multi-valued field: "
                f"'${{{arr_node.name}}}' does not",
                arr_node,
            )
        if isinstance(arr_node, ast.Ident):
            if arr_node.name not in self.macros:
                if "." in arr_node.name and arr_node.name not in self.reg:
                    self.check_supported(arr_node.name, arr_node)
                if arr_node.name in self.reg or arr_node.name in CONSTANTS:
                    raise self.error(
                        f"'{arr_node.name}' is not a list: '{word}' needs [...], a list macro or a "
                        "multi-valued field",
                        arr_node,
                    )
                close = difflib.get_close_matches(arr_node.name, list(self.macros), n=1, cutoff=0.8)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                err = self.error(f"unknown macro '{arr_node.name}'{hint}", arr_node)
                err.unknown_name = arr_node.name
                raise err
            right = self.compile(arr_node)
            if right.type != ARRAY:
                raise self.error(
                    f"macro '{arr_node.name}' is not a list: '{word}' needs [...] or a list macro", arr_node
                )
        else:
            right = self.compile(arr_node)
        arr = right.array
        assert arr is not None
        if left.type == ARRAY:
            raise self.error(f"the left side of '{word}' cannot be a list", left.node)
        if left.type != arr.type:
            raise self.error(
                f"type mismatch: {left.describe()} but the list holds {_PLURALS[arr.type]}", right.node
            )
        for kind, value in arr.items:
            self.check_path(left, kind, value, right.node)
        if left.unknown or left.tri:
            return _unknown(BOOL, node)
        lf = left.fn
        assert lf is not None
        exact = arr.exact
        has_matcher = bool(arr.patterns or arr.regexes)
        m = build_matcher(arr.patterns, arr.regexes) if has_matcher else None
        multi = left.multi
        fn: Callable[[Any], bool]
        if m is None:
            fn = (lambda e: not exact.isdisjoint(lf(e))) if multi else (lambda e: lf(e) in exact)
        elif not exact:
            fn = (lambda e: any(m(x) for x in lf(e))) if multi else (lambda e: m(lf(e)))
        elif multi:
            fn = lambda e: any(x in exact or m(x) for x in lf(e))  # noqa: E731
        else:

            def fn(e: Any) -> bool:
                v = lf(e)
                return v in exact or m(v)

        if node.negated:
            pos = fn
            fn = lambda e: not pos(e)  # noqa: E731
        if left.is_const:
            return _const(BOOL, bool(fn(None)), node)
        approvers: dict[str, frozenset[Approver]] = {}
        if not node.negated and left.field is not None:
            kinds = {
                "string": "exact",
                "int": "exact",
                "bool": "exact",
                "pattern": "pattern",
                "regex": "regex",
            }
            approvers = {left.field.canonical: frozenset(Approver(kinds[k], v) for k, v in arr.items)}
        # a list of patterns costs with its length: a long exclusion list is tested after cheaper conditions
        cost = left.cost + 1 + (3 + len(arr.patterns) + len(arr.regexes) if has_matcher else 0)
        out = Val(BOOL, fn, cost=cost, approvers=approvers, gates=leaf_gates(approvers), node=node)
        if self.codegen and not multi:
            lc = self.code(left)
            if m is None:
                test = f"{lc} in {self.ref(exact)}"
            elif not exact:
                test = f"{self.ref(m)}({lc})"
            else:
                w = f"_w{self.tag()}"
                test = f"({w} := {lc}) in {self.ref(exact)} or {self.ref(m)}({w})"
            out.code = f"(not ({test}))" if node.negated else f"({test})"
        return out


MAX_GATES = 2


def _merge_gates(vals: list[Val], is_and: bool) -> tuple[frozenset[tuple[str, Approver]], ...]:
    if is_and:
        gates = sorted({g for v in vals for g in v.gates}, key=gate_score)
        return tuple(gates[:MAX_GATES])
    live = [v for v in vals if not (v.is_const and not v.const)]
    if not live or any(not v.gates for v in live):
        return ()
    return (frozenset().union(*(v.gates[0] for v in live)),)


def compile_parsed(
    parsed: ParseResult, text: str, macros: dict[str, Macro] | None = None, *, registry: Registry = REGISTRY,
    variables: VariableTable | None = None, search: bool = False,
) -> CompiledRule:
    rule = Compiler(text, macros, registry=registry, variables=variables, search=search).compile_rule(parsed)
    rule.variables = variables
    _add_mixed_logic_warnings(rule, parsed, text)
    return rule


def _add_mixed_logic_warnings(rule: CompiledRule, parsed: ParseResult, text: str) -> None:
    for start, end in parsed.mixed_logic:
        rule.warnings.append(
            SeclError(
                "'&&' and '||' mixed without parentheses: they have equal precedence and group to the right",
                text,
                start,
                end,
            )
        )


def compile_expression(
    expr: str, macros: dict[str, Macro] | None = None, *, registry: Registry = REGISTRY
) -> CompiledRule:
    """Parse, type-check and compile one expression; raise SeclError when it is not a valid rule."""
    return compile_parsed(parse(expr), expr, macros, registry=registry)


def compile_search(
    expr: str, macros: dict[str, Macro] | None = None, *, registry: Registry = REGISTRY
) -> CompiledRule:
    """Compile an expression for any event, as searches over stored events and `rules eval --expr` take them.

    An expression naming no event type (`process.file.name == "curl" && process.uid == 0`) applies to every
    event; one naming an event type is false on events of other types; one naming several
    (`open.file.path == "/etc/shadow" || exec.file.name == "cat"`) applies to events of those types, each
    condition being false on events of a type whose fields it does not read. `event_types` of the result tells
    which event types it can match (None: any), to narrow a search. Policies still require one event type
    (`compile_expression`). Raises SeclError when the expression is invalid."""
    parsed = parse(expr)
    c = Compiler(expr, macros, registry=registry, search=True)
    rule = c.compile_rule(parsed)
    if rule.event_types is not None and len(rule.event_types) > 1:
        c = Compiler(expr, macros, registry=registry, search=True)
        c.guard_leaves = True
        c.codegen = False
        rule = c.compile_rule(parsed)
    _add_mixed_logic_warnings(rule, parsed, expr)
    return rule


def event_types(
    expr: str | CompiledRule, macros: dict[str, Macro] | None = None, *, registry: Registry = REGISTRY
) -> frozenset[str] | None:
    """The event types a search expression can match: None when it applies to every event type, else the set of
    types it names (empty when it can match nothing, such as `... && false`)."""
    rule = expr if isinstance(expr, CompiledRule) else compile_search(expr, macros, registry=registry)
    return rule.event_types


def check_macro(
    macro: Macro,
    macros: dict[str, Macro],
    *,
    registry: Registry = REGISTRY,
    warnings: list[SeclError] | None = None,
) -> Val:
    """Type-check a macro on its own (it may use fields of any event type); raise SeclError if invalid. Warnings
    about the macro's own text are appended to `warnings` (rules using it do not repeat them)."""
    c = Compiler(macro.text, macros, registry=registry, check_event_type=False)
    c.macro_stack.append(macro.id)
    v = c.compile(macro.node)
    if warnings is not None:
        warnings.extend(c.warnings)
    return v


@dataclass
class CompiledValue:
    """A SECL expression compiled for its value on any event (an action's `expression` or `filter`)."""

    expression: str
    fn: Callable[[Any], Any]
    value_type: tuple[str, bool]  # (STRING, INT or BOOL; several values)


def compile_value(
    expr: str, macros: dict[str, Macro] | None = None, *, variables: VariableTable | None = None
) -> CompiledValue:
    """Compile an expression for its value (not only a condition); raise SeclError when it is invalid."""
    parsed = parse(expr)
    c = Compiler(expr, macros, variables=variables, search=True)
    v = c.compile(parsed.node)
    if v.type == ARRAY or v.fn is None:
        raise c.error(f"an action needs a value, but {v.describe()}", parsed.node)
    return CompiledValue(expr, v.fn, (v.type, v.multi))
