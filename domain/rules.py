"""The categorization rules engine: condition trees, actions, staged evaluation and learned payee rules.

Conditions are JSON-friendly trees of any depth (up to `MAX_DEPTH` levels, `MAX_NODES` nodes):

* a leaf ``{"field": "payee", "op": "contains", "value": "rewe", "negate": false}``;
* ``{"all": [...]}`` (AND), ``{"any": [...]}`` (OR) and ``{"not": {...}}``.

Comparison rules:

* Text (payee, description, account, currency, type) ignores case; both sides are trimmed and runs of
  whitespace collapse to one space. ``regex`` searches the trimmed text, case-insensitively.
* ``payee`` equality (``is``, ``one_of``) compares `normalize_payee` forms, so "REWE Markt #1234" is
  "rewe markt"; this is what lets a learned rule recognize a payee again.
* ``account``, ``currency`` and ``type`` are compared exactly (``is``, ``one_of``), ignoring case.
* ``amount`` values are non-negative decimal strings compared exactly, as Decimals, against the absolute
  amount in the transaction's own currency; ``gt``/``lt`` are strict, ``between`` includes both ends.

Regular expressions run through an injected `RegexMatcher`, because a hostile pattern must be cut off by
a time bound and the standard library cannot do that; `StdlibMatcher` has no bound and is for tests only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

#: Stages in the order they run.
STAGES: tuple[str, ...] = ("pre", "default", "post")
#: Fields a condition can read.
FIELDS: tuple[str, ...] = ("payee", "description", "amount", "account", "currency", "type")
#: Every comparison operator.
OPERATORS: tuple[str, ...] = ("is", "contains", "starts_with", "ends_with", "regex", "one_of", "gt", "lt", "between")
#: What each action does, by its JSON key.
ACTION_KINDS: tuple[str, ...] = ("set_category", "rename_payee", "add_tag")
#: Fields a user can lock by setting them by hand.
LOCKABLE: tuple[str, ...] = ("category", "payee")

#: Deepest allowed nesting of a condition tree (the root is level 1).
MAX_DEPTH = 10
#: Most nodes (groups and leaves) in one condition tree.
MAX_NODES = 100
#: Longest regular expression accepted.
MAX_PATTERN_LENGTH = 500
#: Longest text value accepted in a leaf.
MAX_TEXT_LENGTH = 200
#: Most values in a ``one_of`` list.
MAX_CHOICES = 100
#: Most actions in one rule.
MAX_ACTIONS = 10
#: Longest rule name.
MAX_NAME_LENGTH = 100
#: Highest rule order; learned rules use it so they run after the user's own default-stage rules.
MAX_ORDER = 1_000_000
#: The order of learned rules: last in the default stage, before any post rule.
LEARNED_ORDER = MAX_ORDER
#: Longest value of each action, matching what a transaction can store.
ACTION_MAX_LENGTHS: Mapping[str, int] = {"set_category": 100, "rename_payee": 200, "add_tag": 50}

_TEXT_OPERATORS = ("is", "contains", "starts_with", "ends_with", "regex", "one_of")
_EXACT_OPERATORS = ("is", "one_of")
_FIELD_OPERATORS: Mapping[str, tuple[str, ...]] = {
    "payee": _TEXT_OPERATORS,
    "description": _TEXT_OPERATORS,
    "amount": ("is", "one_of", "gt", "lt", "between"),
    "account": _EXACT_OPERATORS,
    "currency": _EXACT_OPERATORS,
    "type": _EXACT_OPERATORS,
}
_GROUP_KEYS = ("all", "any", "not")
_LEAF_KEYS = ("field", "op", "value", "negate")
_RULE_KEYS = ("name", "stage", "order", "conditions", "actions", "enabled", "learned")
_DECIMAL = re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,6})?")


class RuleError(ValueError):
    """A rule, condition or action that is not acceptable; the message names the path to the problem."""


class RegexTimeout(TimeoutError):
    """A regular expression search was cut off because it ran too long."""


class RegexMatcher(Protocol):
    """Compiles and runs regular expressions case-insensitively; implementations should bound search time."""

    def compile_check(self, pattern: str) -> None:
        """Raise RuleError if `pattern` is not a valid regular expression."""

    def search(self, pattern: str, text: str) -> bool:
        """Whether `pattern` matches anywhere in `text`, ignoring case; raises RegexTimeout when cut off."""


@functools.lru_cache(maxsize=512)
def _stdlib_compile(pattern: str) -> re.Pattern[str]:
    """The pattern compiled by `re`, case-insensitive; raises RuleError when it is invalid."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as error:
        raise RuleError(f"invalid regular expression: {error}") from None


class StdlibMatcher:
    """A `re`-based matcher with NO time bound: for tests and development only, never for user patterns."""

    def compile_check(self, pattern: str) -> None:
        """Raise RuleError if `re` cannot compile `pattern`."""
        _stdlib_compile(pattern)

    def search(self, pattern: str, text: str) -> bool:
        """Whether `pattern` matches in `text`, ignoring case; may run for ever on a hostile pattern."""
        return _stdlib_compile(pattern).search(text) is not None


# --- facts and conditions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """The view of a transaction that rules read; `account` is the account id as a string."""

    payee: str
    description: str
    amount: Decimal
    account: str
    currency: str
    type: str


@dataclass(frozen=True)
class Leaf:
    """One comparison; `value` is already normalized (text, Decimal, or a tuple of either)."""

    field: str
    op: str
    value: str | Decimal | tuple[str, ...] | tuple[Decimal, ...]
    negate: bool = False


@dataclass(frozen=True)
class AllOf:
    """True when every child is true (AND)."""

    children: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one child is true (OR)."""

    children: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """True when the child is false."""

    child: Condition


Condition = Leaf | AllOf | AnyOf | Not


@lru_cache(maxsize=65_536)
def fold_text(text: str) -> str:
    """Text as compared by rules: case-folded, trimmed, inner whitespace runs collapsed to one space."""
    return " ".join(text.split()).casefold()


_CARD_SUFFIX = re.compile(r"\*+\s*[^\W_]*\d[^\W_]*")
_STORE_NUMBER = re.compile(r"#\s*\d+")
_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


@lru_cache(maxsize=65_536)
def normalize_payee(text: str) -> str:
    """The payee's identity for learning and equality.

    In order: case-fold; remove card/reference suffixes, i.e. ``*`` followed by a token containing a digit
    ("*1234", "*2X3Y4"; "*NETFLIX" keeps its word); remove store numbers ``#`` + digits ("#1234", "# 12");
    delete apostrophes ("McDonald's" -> "mcdonalds"); turn every other punctuation mark and underscore into a
    space; collapse whitespace; finally drop trailing all-digit words of two or more digits ("rewe 0815" ->
    "rewe") while more than one word remains. Nothing else (legal forms, cities, dates) is removed. The result
    may be empty.
    """
    text = text.casefold()
    text = _CARD_SUFFIX.sub(" ", text)
    text = _STORE_NUMBER.sub(" ", text)
    text = _APOSTROPHES.sub("", text)
    words = _PUNCTUATION.sub(" ", text).split()
    while len(words) > 1 and len(words[-1]) > 1 and words[-1].isdigit():
        words.pop()
    return " ".join(words)


# --- parsing conditions -------------------------------------------------------------------------


@dataclass
class _Budget:
    """How many more nodes a tree being parsed may have."""

    left: int = MAX_NODES


def parse_condition(data: object, matcher: RegexMatcher, path: str = "conditions") -> Condition:
    """A validated condition tree from its JSON form; raises RuleError naming the path of the first problem."""
    return _parse_node(data, matcher, path, 1, _Budget())


def _parse_node(data: object, matcher: RegexMatcher, path: str, depth: int, budget: _Budget) -> Condition:
    """One node of the tree, checking the depth and node limits first."""
    if depth > MAX_DEPTH:
        raise RuleError(f"{path}: conditions nest deeper than {MAX_DEPTH} levels")
    budget.left -= 1
    if budget.left < 0:
        raise RuleError(f"{path}: more than {MAX_NODES} conditions")
    if not isinstance(data, Mapping):
        raise RuleError(f"{path}: expected an object")
    if any(key in data for key in _GROUP_KEYS):
        return _parse_group(data, matcher, path, depth, budget)
    return _parse_leaf(data, matcher, path)


def _parse_group(data: Mapping[object, object], matcher: RegexMatcher, path: str, depth: int,
                 budget: _Budget) -> Condition:
    """An ``all``, ``any`` or ``not`` group; it must have exactly one key."""
    if len(data) != 1:
        raise RuleError(f"{path}: a group has exactly one key of 'all', 'any' or 'not'; got {_keys(data)}")
    ((key, body),) = data.items()
    if key == "not":
        return Not(_parse_node(body, matcher, f"{path}.not", depth + 1, budget))
    if not isinstance(body, list | tuple) or not body:
        raise RuleError(f"{path}.{key}: expected a non-empty list of conditions")
    if len(body) > MAX_NODES:
        raise RuleError(f"{path}.{key}: more than {MAX_NODES} conditions")
    children = tuple(_parse_node(child, matcher, f"{path}.{key}[{i}]", depth + 1, budget)
                     for i, child in enumerate(body))
    return AllOf(children) if key == "all" else AnyOf(children)


def _parse_leaf(data: Mapping[object, object], matcher: RegexMatcher, path: str) -> Leaf:
    """A comparison: known field, an operator that applies to it, and a value of the right shape."""
    unknown = [key for key in data if key not in _LEAF_KEYS]
    if unknown:
        raise RuleError(f"{path}: unknown key(s) {_keys(unknown)}")
    for key in ("field", "op", "value"):
        if key not in data:
            raise RuleError(f"{path}: missing '{key}'")
    name, op, negate = data["field"], data["op"], data.get("negate", False)
    if not isinstance(name, str) or name not in FIELDS:
        raise RuleError(f"{path}.field: unknown field {_show(name)}")
    if not isinstance(op, str) or op not in OPERATORS:
        raise RuleError(f"{path}.op: unknown operator {_show(op)}")
    if op not in _FIELD_OPERATORS[name]:
        raise RuleError(f"{path}.op: operator '{op}' does not apply to field '{name}'")
    if not isinstance(negate, bool):
        raise RuleError(f"{path}.negate: must be true or false")
    value = _parse_value(name, op, data["value"], matcher, f"{path}.value")
    return Leaf(name, op, value, negate)


def _parse_value(name: str, op: str, raw: object, matcher: RegexMatcher,
                 path: str) -> str | Decimal | tuple[str, ...] | tuple[Decimal, ...]:
    """The leaf's value, normalized for comparison."""
    if name == "amount":
        return _parse_amount_value(op, raw, path)
    if op == "regex":
        return _parse_pattern(raw, matcher, path)
    if op == "one_of":
        return tuple(_parse_text(name, op, item, f"{path}[{i}]") for i, item in enumerate(_choices(raw, path)))
    return _parse_text(name, op, raw, path)


def _parse_amount_value(op: str, raw: object, path: str) -> Decimal | tuple[Decimal, ...]:
    """A decimal string, a list of them (``one_of``) or a ``[low, high]`` pair (``between``)."""
    if op == "one_of":
        return tuple(_decimal(item, f"{path}[{i}]") for i, item in enumerate(_choices(raw, path)))
    if op == "between":
        if not isinstance(raw, list | tuple) or len(raw) != 2:
            raise RuleError(f"{path}: 'between' takes a list [low, high] of two decimal strings")
        low, high = _decimal(raw[0], f"{path}[0]"), _decimal(raw[1], f"{path}[1]")
        if low > high:
            raise RuleError(f"{path}: low {low} is greater than high {high}")
        return (low, high)
    return _decimal(raw, path)


def _decimal(raw: object, path: str) -> Decimal:
    """A non-negative plain decimal string such as "12.50", as an exact Decimal."""
    if not isinstance(raw, str):
        raise RuleError(f"{path}: amounts are decimal strings such as \"12.50\", not {type(raw).__name__}")
    if not _DECIMAL.fullmatch(raw.strip()):
        raise RuleError(f"{path}: {_show(raw)} is not a non-negative decimal such as \"12.50\"")
    return Decimal(raw.strip())


def _choices(raw: object, path: str) -> list[object] | tuple[object, ...]:
    """The list given to ``one_of``: 1 to MAX_CHOICES items."""
    if not isinstance(raw, list | tuple) or not raw:
        raise RuleError(f"{path}: 'one_of' takes a non-empty list")
    if len(raw) > MAX_CHOICES:
        raise RuleError(f"{path}: 'one_of' takes at most {MAX_CHOICES} values")
    return raw


def _parse_text(name: str, op: str, raw: object, path: str) -> str:
    """A non-empty string of at most MAX_TEXT_LENGTH characters, folded (payee equality: normalized)."""
    if not isinstance(raw, str):
        raise RuleError(f"{path}: expected a string, not {type(raw).__name__}")
    if len(raw) > MAX_TEXT_LENGTH:
        raise RuleError(f"{path}: longer than {MAX_TEXT_LENGTH} characters")
    value = normalize_payee(raw) if name == "payee" and op in _EXACT_OPERATORS else fold_text(raw)
    if not value:
        raise RuleError(f"{path}: must not be empty")
    return value


def _parse_pattern(raw: object, matcher: RegexMatcher, path: str) -> str:
    """A regular expression the matcher compiles, at most MAX_PATTERN_LENGTH characters."""
    if not isinstance(raw, str) or not raw:
        raise RuleError(f"{path}: expected a non-empty regular expression string")
    if len(raw) > MAX_PATTERN_LENGTH:
        raise RuleError(f"{path}: regular expression longer than {MAX_PATTERN_LENGTH} characters")
    try:
        matcher.compile_check(raw)
    except RuleError as error:
        raise RuleError(f"{path}: {error}") from None
    return raw


def _show(value: object) -> str:
    """A short, safe rendering of a bad value for an error message."""
    return repr(value)[:40] if isinstance(value, str) else f"<{type(value).__name__}>"


def _keys(keys: Iterable[object]) -> str:
    """Keys listed for an error message."""
    return ", ".join(_show(key) for key in list(keys)[:5]) or "none"


# --- evaluating conditions ----------------------------------------------------------------------


def evaluate(condition: Condition, facts: Facts, matcher: RegexMatcher) -> bool:
    """Whether `condition` holds for `facts`; raises RegexTimeout when a regex search is cut off."""
    if isinstance(condition, AllOf):
        return all(evaluate(child, facts, matcher) for child in condition.children)
    if isinstance(condition, AnyOf):
        return any(evaluate(child, facts, matcher) for child in condition.children)
    if isinstance(condition, Not):
        return not evaluate(condition.child, facts, matcher)
    return _compare(condition, facts, matcher) != condition.negate


def _compare(leaf: Leaf, facts: Facts, matcher: RegexMatcher) -> bool:
    """The leaf's comparison before negation."""
    if leaf.field == "amount":
        return _compare_amount(leaf, abs(facts.amount))
    raw = getattr(facts, leaf.field) or ""
    if leaf.op == "regex":
        return matcher.search(str(leaf.value), raw.strip())
    if leaf.field == "payee" and leaf.op in _EXACT_OPERATORS:
        text = normalize_payee(raw)
    else:
        text = fold_text(raw)
    return _compare_text(leaf.op, text, leaf.value)


def _compare_text(op: str, text: str, value: object) -> bool:
    """A folded text comparison."""
    if isinstance(value, tuple):
        return text in value
    value = str(value)
    if op == "contains":
        return value in text
    if op == "starts_with":
        return text.startswith(value)
    if op == "ends_with":
        return text.endswith(value)
    return text == value


def _compare_amount(leaf: Leaf, amount: Decimal) -> bool:
    """An exact Decimal comparison against the absolute amount."""
    value = leaf.value
    if isinstance(value, tuple):
        return value[0] <= amount <= value[1] if leaf.op == "between" else amount in value
    limit = Decimal(value)
    if leaf.op == "gt":
        return amount > limit
    if leaf.op == "lt":
        return amount < limit
    return amount == limit


# --- actions and rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One thing a matching rule does: `kind` is one of ACTION_KINDS, `value` its trimmed argument."""

    kind: str
    value: str


def parse_actions(data: object, path: str = "actions") -> tuple[Action, ...]:
    """Validated actions from JSON such as ``[{"set_category": "Groceries"}, {"add_tag": "food"}]``."""
    if not isinstance(data, list | tuple) or not data:
        raise RuleError(f"{path}: expected a non-empty list of actions")
    if len(data) > MAX_ACTIONS:
        raise RuleError(f"{path}: at most {MAX_ACTIONS} actions")
    actions = tuple(_parse_action(item, f"{path}[{i}]") for i, item in enumerate(data))
    for kind in ("set_category", "rename_payee"):
        if sum(action.kind == kind for action in actions) > 1:
            raise RuleError(f"{path}: at most one '{kind}' per rule")
    return actions


def _parse_action(data: object, path: str) -> Action:
    """One ``{kind: value}`` object."""
    if not isinstance(data, Mapping) or len(data) != 1:
        raise RuleError(f"{path}: expected an object with exactly one of {', '.join(ACTION_KINDS)}")
    ((kind, raw),) = data.items()
    if kind not in ACTION_KINDS:
        raise RuleError(f"{path}: unknown action {_show(kind)}")
    if not isinstance(raw, str) or not raw.strip():
        raise RuleError(f"{path}.{kind}: expected a non-empty string")
    value = " ".join(raw.split())
    if len(value) > ACTION_MAX_LENGTHS[kind]:
        raise RuleError(f"{path}.{kind}: longer than {ACTION_MAX_LENGTHS[kind]} characters")
    return Action(kind, value)


@dataclass(frozen=True)
class Rule:
    """A categorization rule; rules run by stage, then `order`, then `id`. `learned` marks learned rules."""

    id: str
    name: str
    stage: str
    order: int
    condition: Condition
    actions: tuple[Action, ...]
    enabled: bool = True
    learned: bool = False

    def __post_init__(self) -> None:
        """Refuse an unknown stage, which would otherwise break ordering."""
        if self.stage not in STAGES:
            raise RuleError(f"stage: unknown stage {_show(self.stage)}")


def parse_rule(rule_id: str, data: object, matcher: RegexMatcher) -> Rule:
    """A validated rule from JSON with name, stage, order, conditions, actions and optional enabled/learned."""
    if not isinstance(data, Mapping):
        raise RuleError("rule: expected an object")
    unknown = [key for key in data if key not in _RULE_KEYS]
    if unknown:
        raise RuleError(f"rule: unknown key(s) {_keys(unknown)}")
    for key in ("name", "conditions", "actions"):
        if key not in data:
            raise RuleError(f"{key}: missing")
    return Rule(
        id=rule_id, name=_name(data["name"]), stage=_stage(data.get("stage", "default")),
        order=_order(data.get("order", 0)), condition=parse_condition(data["conditions"], matcher),
        actions=parse_actions(data["actions"]), enabled=_flag(data.get("enabled", True), "enabled"),
        learned=_flag(data.get("learned", False), "learned"),
    )


def _name(raw: object) -> str:
    """A non-empty one-line name."""
    if not isinstance(raw, str) or not raw.strip():
        raise RuleError("name: expected a non-empty string")
    if len(raw) > MAX_NAME_LENGTH:
        raise RuleError(f"name: longer than {MAX_NAME_LENGTH} characters")
    return " ".join(raw.split())


def _stage(raw: object) -> str:
    """One of STAGES."""
    if not isinstance(raw, str) or raw not in STAGES:
        raise RuleError(f"stage: unknown stage {_show(raw)}; expected one of {', '.join(STAGES)}")
    return raw


def _order(raw: object) -> int:
    """An integer from 0 to MAX_ORDER."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_ORDER:
        raise RuleError(f"order: expected an integer from 0 to {MAX_ORDER}")
    return raw


def _flag(raw: object, key: str) -> bool:
    """A JSON boolean."""
    if not isinstance(raw, bool):
        raise RuleError(f"{key}: must be true or false")
    return raw


# --- applying rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the rules decided; `category_rule_id` is the rule that set the category (None if none did)."""

    category: str | None
    category_rule_id: str | None
    payee: str
    tags: tuple[str, ...]
    matched: tuple[str, ...]
    errors: tuple[str, ...]
    category_learned: bool = False


@dataclass
class _Run:
    """The mutable state of one evaluation."""

    facts: Facts
    category: str | None = None
    category_rule_id: str | None = None
    category_learned: bool = False
    tags: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_order(rules: Iterable[Rule]) -> list[Rule]:
    """The enabled rules in the order they run: stage (pre, default, post), then order, then id."""
    return sorted((rule for rule in rules if rule.enabled),
                  key=lambda rule: (STAGES.index(rule.stage), rule.order, rule.id))


def apply_rules(rules: Sequence[Rule], facts: Facts, locked: frozenset[str] = frozenset(), *,
                matcher: RegexMatcher, ordered: bool = False) -> Outcome:
    """Run the rules over one transaction.

    Every matching rule's actions apply in turn. ``set_category`` is last-writer-wins (so post rules can
    correct earlier ones) and never applies when "category" is in `locked`; ``rename_payee`` never applies
    when "payee" is locked, and later rules see the new payee; tags accumulate, de-duplicated ignoring case,
    first spelling and order kept. A rule whose regex search is cut off is skipped (not matched), recorded
    in `errors` as "<id>: regex timed out", and the other rules still run. `matched` lists every rule whose
    condition held, even if a lock stopped its actions. `ordered=True` says `rules` already came from
    run_order (batches sort once, not once per transaction).
    """
    run = _Run(facts)
    for rule in (rules if ordered else run_order(rules)):
        try:
            hit = evaluate(rule.condition, run.facts, matcher)
        except RegexTimeout:
            run.errors.append(f"{rule.id}: regex timed out")
            continue
        if hit:
            run.matched.append(rule.id)
            for action in rule.actions:
                _apply(action, rule, run, locked)
    return Outcome(run.category, run.category_rule_id, run.facts.payee, tuple(run.tags), tuple(run.matched),
                   tuple(run.errors), run.category_learned)


def _apply(action: Action, rule: Rule, run: _Run, locked: frozenset[str]) -> None:
    """One action's effect on the run, honouring the user's locks."""
    if action.kind == "set_category" and "category" not in locked:
        run.category, run.category_rule_id, run.category_learned = action.value, rule.id, rule.learned
    elif action.kind == "rename_payee" and "payee" not in locked:
        run.facts = replace(run.facts, payee=action.value)
    elif action.kind == "add_tag" and action.value.casefold() not in {tag.casefold() for tag in run.tags}:
        run.tags.append(action.value)


# --- learning -----------------------------------------------------------------------------------


def learned_rule(payee: str, category: str) -> dict[str, object]:
    """The rule JSON (for `parse_rule`) learned when the user re-categorizes `payee`: payee is X -> category.

    It runs in the default stage at LEARNED_ORDER: after the user's own default rules, before post rules.
    """
    key = normalize_payee(payee)
    if not key:
        raise RuleError("payee: nothing left to learn from after normalization")
    if len(key) > MAX_TEXT_LENGTH:
        raise RuleError(f"payee: longer than {MAX_TEXT_LENGTH} characters")
    action = _parse_action({"set_category": category}, "category")
    name = f"Learned: {key} -> {action.value}"
    if len(name) > MAX_NAME_LENGTH:
        name = name[: MAX_NAME_LENGTH - 3] + "..."
    return {
        "name": name, "stage": "default", "order": LEARNED_ORDER, "learned": True,
        "conditions": {"field": "payee", "op": "is", "value": key},
        "actions": [{"set_category": action.value}],
    }


# --- many rules, one transaction at a time ----------------------------------------------------------


@dataclass(frozen=True)
class RuleSet:
    """Rules prepared for many transactions: those that only say `payee is X` are found by payee, so a
    transaction is compared only with the rules that can match it (exact while no rule renames payees)."""

    ordered: tuple[Rule, ...]
    by_payee: dict[str, tuple[int, ...]]
    others: tuple[int, ...]
    renames: bool


def _payee_is(rule: Rule) -> str | None:
    """The payee a rule matches when its whole condition is one `payee is X`; None otherwise."""
    leaf = rule.condition
    if isinstance(leaf, Leaf) and leaf.field == "payee" and leaf.op == "is" and not leaf.negate:
        return str(leaf.value)
    return None


def prepare(rules: Iterable[Rule]) -> RuleSet:
    """Order the rules once and index the `payee is X` ones."""
    ordered = tuple(run_order(rules))
    by_payee: dict[str, list[int]] = {}
    others = []
    for position, rule in enumerate(ordered):
        key = _payee_is(rule)
        if key is None:
            others.append(position)
        else:
            by_payee.setdefault(key, []).append(position)
    renames = any(action.kind == "rename_payee" for rule in ordered for action in rule.actions)
    return RuleSet(ordered, {k: tuple(v) for k, v in by_payee.items()}, tuple(others), renames)


def apply_rule_set(rule_set: RuleSet, facts: Facts, locked: frozenset[str] = frozenset(), *,
                   matcher: RegexMatcher) -> Outcome:
    """The same outcome as apply_rules over all the rules, comparing only those that can match."""
    if rule_set.renames:
        return apply_rules(rule_set.ordered, facts, locked, matcher=matcher, ordered=True)
    positions = sorted((*rule_set.others, *rule_set.by_payee.get(normalize_payee(facts.payee), ())))
    return apply_rules([rule_set.ordered[p] for p in positions], facts, locked, matcher=matcher, ordered=True)
