"""SECL parser: tokens → syntax tree, with Datadog's grouping rules.

Grammar (weakest binding first; every binary level but `+`/`-` groups to the right, as in Datadog's parser):

    expression := comparison [ ("&&" | "||" | "and" | "or") expression ]    # && and || have EQUAL precedence
    comparison := arith [ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~") comparison
                        | ("in" | "not" "in") array ]
    arith      := bitop { ("+" | "-") bitop }                                # groups to the LEFT: 1 - 2 + 3 is 2
    bitop      := unary [ ("&" | "|" | "^") bitop ]                          # binds tighter than + and -
    unary      := ("!" | "not" | "-" | "^") unary | primary
    primary    := identifier | integer | duration | string | ~"pattern" | r"regex" | ${variable}
                | true | false | "(" expression ")"
    array      := "[" literal { "," literal } "]" | macro-or-field-identifier | ${variable}

Identifiers may hold an iterator register (`process.ancestors[A].file.name`: see `registers`). So
`a && b || c` is `a && (b || c)`, and `1 + 2 & 3` is `1 + (2 & 3)` (arithmetic, as in Datadog's parser, is a
list of bit operations joined by `+`/`-`, evaluated left to right). The parser is an operator-precedence
(shunting-yard) loop with explicit stacks, so deep nesting cannot overflow Python's stack; trees deeper than
MAX_DEPTH are refused with a precise error so that the compiler (which recurses) stays safe. Parentheses add
no depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opencws.secl import ast
from opencws.secl.errors import SeclError
from opencws.secl.lexer import (
    COMMA,
    DURATION,
    EOF,
    IDENT,
    INT,
    LBRACKET,
    LPAREN,
    OP,
    PATTERN,
    RBRACKET,
    REGEX,
    RPAREN,
    STRING,
    VARIABLE,
    Token,
    tokenize,
)

# Deepest syntax tree accepted (operators nested in operators; parentheses alone do not count).
MAX_DEPTH = 200

LOGICAL, COMPARISON, ARITH, BIT, UNARY = 1, 2, 3, 4, 5
_LOGICAL_OPS = {"&&": "and", "||": "or", "and": "and", "or": "or"}
_COMPARISON_OPS = {"==", "!=", "<", "<=", ">", ">=", "=~", "!~"}
_BIT_OPS = {"&", "|", "^"}
_ARITH_OPS = {"+", "-"}
_UNARY_OPS = {"!": "!", "not": "!", "-": "-", "^": "^"}


@dataclass
class ParseResult:
    node: ast.Node
    # Positions of `&&`/`||` mixed without parentheses (rules check warns about them).
    mixed_logic: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Op:
    kind: str  # "paren", "unary", "binary"
    tok: Token
    prec: int = 0


def _op_text(tok: Token) -> str:
    return tok.text if tok.kind == OP else tok.kind


def parse(text: str) -> ParseResult:
    """Parse a whole expression; raise SeclError (with the offending token's span) on any syntax error."""
    return _Parser(text).run()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.operands: list[ast.Node] = []
        self.ops: list[_Op] = []
        # Nodes written in parentheses, by id (the dict keeps them alive so that ids are not reused).
        self.parenthesized: dict[int, ast.Node] = {}
        self.mixed: list[tuple[int, int]] = []

    def error(self, msg: str, tok: Token) -> SeclError:
        return SeclError(msg, self.text, tok.pos, tok.end)

    def run(self) -> ParseResult:
        toks = self.toks
        i = 0
        expect_operand = True
        after_array: Token | None = None  # `x in [...]` must be followed by && / || / ) / end
        while True:
            tok = toks[i]
            if expect_operand:
                if tok.kind == LPAREN:
                    self.ops.append(_Op("paren", tok))
                    i += 1
                    continue
                if (tok.kind == OP and tok.text in ("!", "-", "^")) or tok.kind == "not":
                    self.ops.append(_Op("unary", tok, UNARY))
                    i += 1
                    continue
                if tok.kind == LBRACKET:
                    # An array as an operand: the body of a list macro (`in` takes arrays directly).
                    node, i = self.array(i, tok)
                    self.operands.append(node)
                    expect_operand = False
                    continue
                node = self.primary(tok)
                if node is None:
                    if tok.kind == EOF:
                        raise self.error("unexpected end of expression: an operand is missing", tok)
                    raise self.error(f"expected a value, a field or '(', found {tok.describe()}", tok)
                self.operands.append(node)
                expect_operand = False
                i += 1
                continue
            # Operator position.
            text = _op_text(tok)
            if after_array is not None and not (text in _LOGICAL_OPS or tok.kind in (RPAREN, EOF)):
                raise self.error(f"expected '&&', '||' or ')' after the array, found {tok.describe()}", tok)
            after_array = None
            if text in _LOGICAL_OPS or text in _COMPARISON_OPS or text in _BIT_OPS or text in _ARITH_OPS:
                if text in _LOGICAL_OPS:
                    prec = LOGICAL
                elif text in _COMPARISON_OPS:
                    prec = COMPARISON
                else:
                    prec = BIT if text in _BIT_OPS else ARITH
                # Every level groups to the right, but arithmetic to the left (reduce the same level first).
                self.reduce_above(prec - 1 if prec == ARITH else prec)
                self.ops.append(_Op("binary", tok, prec))
                expect_operand = True
                i += 1
                continue
            if tok.kind == "in" or (tok.kind == "not" and toks[i + 1].kind == "in"):
                negated = tok.kind == "not"
                in_tok = toks[i + 1] if negated else tok
                self.reduce_above(COMPARISON)
                array, i = self.array(i + (2 if negated else 1), in_tok)
                left = self.operands.pop()
                node = ast.InArray(left.pos, array.end, left, array, negated, tok.pos)
                node._depth = self.check_depth(left.depth + 1, tok)
                self.operands.append(node)
                after_array = tok
                continue
            if tok.kind == "allin":
                raise self.error(
                    "'allin' is only valid for CIDR values, which this engine does not support", tok
                )
            if tok.kind == RPAREN:
                self.reduce_above(0)
                if not self.ops:
                    raise self.error("unbalanced ')': no matching '('", tok)
                self.ops.pop()
                inner = self.operands[-1]
                self.parenthesized[id(inner)] = inner
                i += 1
                continue
            if tok.kind == EOF:
                self.reduce_above(0)
                if self.ops:
                    raise self.error("missing ')' for this '('", self.ops[-1].tok)
                break
            if tok.kind in (IDENT, STRING, PATTERN, REGEX, INT, DURATION, VARIABLE, "true", "false"):
                raise self.error(f"expected an operator, found {tok.describe()}", tok)
            raise self.error(f"unexpected {tok.describe()}", tok)
        (node,) = self.operands
        return ParseResult(node, self.mixed)

    def reduce_above(self, prec: int) -> None:
        """Apply stacked operators that bind tighter than `prec` (strictly: same-level ones group right)."""
        ops = self.ops
        while ops and ops[-1].kind != "paren" and ops[-1].prec > prec:
            op = ops.pop()
            if op.kind == "unary":
                operand = self.operands.pop()
                sym = _UNARY_OPS[_op_text(op.tok)]
                node: ast.Node = ast.Unary(op.tok.pos, operand.end, sym, operand)
                node._depth = self.check_depth(operand.depth + 1, op.tok)
            else:
                right = self.operands.pop()
                left = self.operands.pop()
                node = self.binary(op, left, right)
            self.operands.append(node)

    def binary(self, op: _Op, left: ast.Node, right: ast.Node) -> ast.Node:
        text = _op_text(op.tok)
        if op.prec != LOGICAL:
            node = ast.Binary(left.pos, right.end, text, left, right, op.tok.pos)
            node._depth = self.check_depth(max(left.depth, right.depth) + 1, op.tok)
            return node
        kind = _LOGICAL_OPS[text]
        if (
            isinstance(right, ast.Logical)
            and right.op == kind
            and id(right) not in self.parenthesized
            and not (isinstance(left, ast.Logical) and left.op == kind)
        ):
            # The common right-grouped chain `a || b || c ...`: grow the existing node in place (cheap). Never a
            # parenthesised node: it would then stand for more than its parentheses hold.
            if isinstance(left, ast.Logical) and id(left) not in self.parenthesized:
                self.mixed.append((op.tok.pos, op.tok.end))
            right.operands.insert(0, left)
            right.pos = left.pos
            right._depth = self.check_depth(max(right._depth, left.depth + 1), op.tok)
            return right
        operands: list[ast.Node] = []
        depth = 0
        for side in (left, right):
            if isinstance(side, ast.Logical):
                if side.op == kind:
                    operands.extend(side.operands)
                    depth = max(depth, side.depth - 1)
                    continue
                if id(side) not in self.parenthesized:
                    self.mixed.append((op.tok.pos, op.tok.end))
            operands.append(side)
            depth = max(depth, side.depth)
        node = ast.Logical(left.pos, right.end, kind, operands, op.tok.pos)
        node._depth = self.check_depth(depth + 1, op.tok)
        return node

    def check_depth(self, depth: int, tok: Token) -> int:
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels of operators)", tok)
        return depth

    def primary(self, tok: Token) -> ast.Node | None:
        k = tok.kind
        if k == IDENT:
            return ast.Ident(tok.pos, tok.end, tok.text)
        if k == INT:
            return ast.IntLit(tok.pos, tok.end, tok.value)  # type: ignore[arg-type]
        if k == DURATION:
            return ast.IntLit(tok.pos, tok.end, tok.value, duration=True)  # type: ignore[arg-type]
        if k in (STRING, PATTERN, REGEX):
            kind = "string" if k == STRING else "pattern" if k == PATTERN else "regex"
            return ast.StrLit(tok.pos, tok.end, tok.value, kind)  # type: ignore[arg-type]
        if k == VARIABLE:
            return ast.Variable(tok.pos, tok.end, tok.value)  # type: ignore[arg-type]
        if k in ("true", "false"):
            return ast.BoolLit(tok.pos, tok.end, k == "true")
        return None

    def array(self, i: int, in_tok: Token) -> tuple[ast.Node, int]:
        """Parse the right side of `in`: `[...]`, a macro name or a variable; return (node, next index)."""
        toks = self.toks
        tok = toks[i]
        if tok.kind == IDENT:
            return ast.Ident(tok.pos, tok.end, tok.text), i + 1
        if tok.kind == VARIABLE:
            return ast.Variable(tok.pos, tok.end, tok.value), i + 1  # type: ignore[arg-type]
        if tok.kind != LBRACKET:
            raise self.error(
                f"expected '[' or a list macro after '{in_tok.text}', found {tok.describe()}", tok
            )
        start = tok
        items: list[ast.Node] = []
        i += 1
        if toks[i].kind == RBRACKET:
            raise self.error("empty array", toks[i])
        while True:
            tok = toks[i]
            neg = None
            if tok.kind == OP and tok.text == "-" and toks[i + 1].kind == INT:
                neg, tok = tok, toks[i + 1]
                i += 1
            item = self.primary(tok)
            if item is None or isinstance(item, ast.Variable):
                if tok.kind == EOF:
                    raise self.error("missing ']' for this '['", start)
                raise self.error(f"expected a literal value in the array, found {tok.describe()}", tok)
            if neg is not None:
                item = ast.IntLit(neg.pos, tok.end, -tok.value)  # type: ignore[operator]
            items.append(item)
            i += 1
            sep = toks[i]
            if sep.kind == COMMA:
                i += 1
                continue
            if sep.kind == RBRACKET:
                return ast.ArrayLit(start.pos, sep.end, items), i + 1
            if sep.kind == EOF:
                raise self.error("missing ']' for this '['", start)
            raise self.error(f"expected ',' or ']' in the array, found {sep.describe()}", sep)
