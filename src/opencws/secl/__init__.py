"""SECL, the rule language of CWS: parse, type-check and compile expressions and policies, evaluate them.

from opencws.secl import load_policies, RuleSet, compile_expression, SeclError

policies = load_policies(["policies/"])       # errors in policies.errors, never raised
rules = RuleSet(policies.rules)
rules.match(event)                             # → ids of matching rules
compile_expression('open.file.path == "/etc/shadow"').evaluate(event)
compile_search('process.file.name == "curl"').evaluate(event)   # any event; event_types(expr) narrows a search
"""

from opencws.secl.compiler import (
    Approver,
    CompiledRule,
    Macro,
    compile_expression,
    compile_search,
    event_types,
)
from opencws.secl.errors import SeclError
from opencws.secl.fields import EVENT_TYPES, REGISTRY
from opencws.secl.policy import PolicyFile, PolicySet, Rule, load_policies
from opencws.secl.ruleset import RuleSet

__all__ = [
    "EVENT_TYPES",
    "REGISTRY",
    "Approver",
    "CompiledRule",
    "Macro",
    "PolicyFile",
    "PolicySet",
    "Rule",
    "RuleSet",
    "SeclError",
    "compile_expression",
    "compile_search",
    "event_types",
    "load_policies",
]
