"""Behaviour of the categorization rules engine: operators, nesting, stages, locks, learning and regex bounds."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import regex

from domain.rules import (
    LEARNED_ORDER,
    MAX_DEPTH,
    MAX_NODES,
    Action,
    AllOf,
    AnyOf,
    Facts,
    Leaf,
    Not,
    RegexTimeout,
    Rule,
    RuleError,
    StdlibMatcher,
    apply_rules,
    evaluate,
    learned_rule,
    normalize_payee,
    parse_actions,
    parse_condition,
    parse_rule,
    run_order,
)
from services.regex_matcher import TimedMatcher

STD = StdlibMatcher()

#: Exponential backtracking even in the `regex` module: each "a" can match either branch, and "!" forces
#: every split to be tried (2**30 paths). Untimed it runs for hours; n=24 alone takes several seconds.
CATASTROPHIC_PATTERN = r"(a|a)+$"
CATASTROPHIC_TEXT = "a" * 30 + "!"


def facts(payee: str = "REWE Markt #1234", description: str = "Card payment", amount: str = "-42.50",
          account: str = "acc-1", currency: str = "EUR", type: str = "expense") -> Facts:
    """A transaction view with sensible defaults."""
    return Facts(payee, description, Decimal(amount), account, currency, type)


def leaf(field: str, op: str, value: Any, negate: bool = False) -> dict[str, Any]:
    """A leaf condition as JSON."""
    return {"field": field, "op": op, "value": value, "negate": negate}


def holds(condition: dict[str, Any], view: Facts | None = None) -> bool:
    """Parse and evaluate a condition with the stdlib matcher."""
    return evaluate(parse_condition(condition, STD), view or facts(), STD)


def rule(rule_id: str, condition: dict[str, Any], actions: list[dict[str, str]], stage: str = "default",
         order: int = 0, enabled: bool = True, matcher: Any = STD) -> Rule:
    """A parsed rule."""
    data = {"name": rule_id, "stage": stage, "order": order, "conditions": condition, "actions": actions,
            "enabled": enabled}
    return parse_rule(rule_id, data, matcher)


ALWAYS = leaf("currency", "is", "EUR")


# --- operators --------------------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "expected"), [
    (leaf("payee", "is", "rewe markt"), True),
    (leaf("payee", "is", "REWE"), False),
    (leaf("payee", "contains", "markt"), True),
    (leaf("payee", "contains", "lidl"), False),
    (leaf("payee", "starts_with", "rewe"), True),
    (leaf("payee", "starts_with", "markt"), False),
    (leaf("payee", "ends_with", "#1234"), True),
    (leaf("payee", "ends_with", "rewe"), False),
    (leaf("payee", "regex", r"^rewe\s+m"), True),
    (leaf("payee", "regex", r"^lidl"), False),
    (leaf("payee", "one_of", ["aldi", "rewe markt"]), True),
    (leaf("payee", "one_of", ["aldi", "lidl"]), False),
    (leaf("description", "is", "card payment"), True),
    (leaf("description", "contains", "pay"), True),
    (leaf("description", "starts_with", "card"), True),
    (leaf("description", "ends_with", "payment"), True),
    (leaf("description", "regex", r"pay(ment)?$"), True),
    (leaf("description", "one_of", ["transfer", "card payment"]), True),
    (leaf("amount", "is", "42.5"), True),
    (leaf("amount", "is", "42.51"), False),
    (leaf("amount", "one_of", ["10", "42.50"]), True),
    (leaf("amount", "one_of", ["10", "42.49"]), False),
    (leaf("amount", "gt", "42.49"), True),
    (leaf("amount", "gt", "42.50"), False),
    (leaf("amount", "lt", "42.51"), True),
    (leaf("amount", "lt", "42.50"), False),
    (leaf("amount", "between", ["42.50", "42.50"]), True),
    (leaf("amount", "between", ["0", "42.49"]), False),
    (leaf("account", "is", "acc-1"), True),
    (leaf("account", "one_of", ["acc-2", "acc-3"]), False),
    (leaf("currency", "is", "eur"), True),
    (leaf("currency", "one_of", ["USD", "GBP"]), False),
    (leaf("type", "is", "EXPENSE"), True),
    (leaf("type", "one_of", ["income", "transfer"]), False),
])
def test_each_operator_on_each_field(condition, expected):
    assert holds(condition) is expected
    assert holds({**condition, "negate": True}) is not expected


def test_text_comparisons_ignore_case_and_surrounding_or_repeated_whitespace():
    view = facts(payee="  Whole   FOODS Market ", description="\tMonthly  RENT\n")
    assert holds(leaf("payee", "contains", "whole foods"), view)
    assert holds(leaf("payee", "starts_with", " WHOLE foods "), view)
    assert holds(leaf("description", "is", "monthly rent"), view)
    assert holds(leaf("description", "ends_with", "Rent"), view)
    assert holds(leaf("description", "regex", "^monthly"), view)


def test_amounts_compare_exactly_against_the_absolute_value():
    assert holds(leaf("amount", "is", "42.50"), facts(amount="42.5"))
    assert holds(leaf("amount", "is", "42.50"), facts(amount="-42.500"))
    assert not holds(leaf("amount", "gt", "0.10"), facts(amount="0.1"))
    assert holds(leaf("amount", "gt", "0.1"), facts(amount="0.10000001"))
    assert holds(leaf("amount", "between", ["100", "1000"]), facts(amount="-1000"))
    assert holds(leaf("amount", "is", "1500"), facts(amount="1500", currency="JPY"))


def test_payee_equality_ignores_store_numbers_card_suffixes_and_punctuation():
    assert holds(leaf("payee", "is", "REWE-Markt"), facts(payee="rewe markt 0815"))
    assert holds(leaf("payee", "is", "Amazon.de"), facts(payee="AMAZON.DE*2X3Y4"))
    assert not holds(leaf("payee", "contains", "rewe markt"), facts(payee="REWE-Markt"))


def test_negate_defaults_to_false():
    assert holds({"field": "payee", "op": "contains", "value": "rewe"})


# --- nesting ----------------------------------------------------------------------------------


def test_all_any_and_not_nest_several_levels_deep():
    condition = {"all": [
        leaf("currency", "is", "EUR"),
        {"any": [
            leaf("payee", "contains", "lidl"),
            {"all": [
                leaf("payee", "starts_with", "rewe"),
                {"not": {"any": [leaf("amount", "gt", "100"), leaf("type", "is", "income")]}},
            ]},
        ]},
    ]}
    assert holds(condition)
    assert not holds(condition, facts(amount="150"))
    assert not holds(condition, facts(type="income"))
    assert holds(condition, facts(payee="Lidl", amount="150"))
    assert not holds(condition, facts(payee="Aldi"))
    assert not holds(condition, facts(currency="USD"))


def test_parse_builds_the_tree_with_normalized_values():
    tree = parse_condition({"any": [{"not": leaf("payee", "contains", "  ReWe ")}, leaf("amount", "lt", "5")]}, STD)
    assert tree == AnyOf((Not(Leaf("payee", "contains", "rewe")), Leaf("amount", "lt", Decimal("5"))))
    assert parse_condition({"all": [ALWAYS]}, STD) == AllOf((Leaf("currency", "is", "eur"),))


def test_not_of_not_and_negated_leaf_cancel_out():
    assert holds({"not": {"not": leaf("payee", "contains", "rewe")}})
    assert holds({"not": leaf("payee", "contains", "rewe", negate=True)})


# --- stages, order, actions -------------------------------------------------------------------


def test_rules_run_by_stage_then_order_then_id():
    rules = [
        rule("p2", ALWAYS, [{"add_tag": "p2"}], stage="post", order=0),
        rule("b", ALWAYS, [{"add_tag": "default-b"}], order=5),
        rule("a", ALWAYS, [{"add_tag": "default-a"}], order=5),
        rule("first", ALWAYS, [{"add_tag": "default-1"}], order=1),
        rule("pre", ALWAYS, [{"add_tag": "pre"}], stage="pre", order=99),
        rule("off", ALWAYS, [{"add_tag": "never"}], stage="pre", enabled=False),
    ]
    outcome = apply_rules(rules, facts(), matcher=STD)
    assert outcome.matched == ("pre", "first", "a", "b", "p2")
    assert outcome.tags == ("pre", "default-1", "default-a", "default-b", "p2")
    assert [r.id for r in run_order(rules)] == list(outcome.matched)


def test_category_is_last_writer_wins_so_post_rules_correct_earlier_stages():
    rules = [
        rule("post", leaf("amount", "gt", "40"), [{"set_category": "Big purchase"}], stage="post"),
        rule("default", leaf("payee", "contains", "rewe"), [{"set_category": "Groceries"}]),
        rule("pre", ALWAYS, [{"set_category": "Misc"}], stage="pre"),
    ]
    outcome = apply_rules(rules, facts(), matcher=STD)
    assert (outcome.category, outcome.category_rule_id) == ("Big purchase", "post")
    small = apply_rules(rules, facts(amount="-5"), matcher=STD)
    assert (small.category, small.category_rule_id) == ("Groceries", "default")


def test_no_match_leaves_everything_as_it_was():
    outcome = apply_rules([rule("r", leaf("payee", "is", "lidl"), [{"set_category": "Groceries"}])], facts(),
                          matcher=STD)
    assert outcome.category is None and outcome.category_rule_id is None
    assert outcome.payee == "REWE Markt #1234"
    assert outcome.tags == outcome.matched == outcome.errors == ()


def test_a_rename_is_seen_by_later_rules():
    rules = [
        rule("rename", leaf("payee", "regex", r"^amzn"), [{"rename_payee": "Amazon"}], stage="pre"),
        rule("cat", leaf("payee", "is", "amazon"), [{"set_category": "Shopping"}]),
    ]
    outcome = apply_rules(rules, facts(payee="AMZN Mktp DE*2X3Y4"), matcher=STD)
    assert outcome.payee == "Amazon"
    assert (outcome.category, outcome.matched) == ("Shopping", ("rename", "cat"))


def test_tags_accumulate_without_duplicates_in_order():
    rules = [
        rule("a", ALWAYS, [{"add_tag": "food"}, {"add_tag": "weekly"}], order=1),
        rule("b", ALWAYS, [{"add_tag": "FOOD"}, {"add_tag": "shared"}], order=2),
    ]
    assert apply_rules(rules, facts(), matcher=STD).tags == ("food", "weekly", "shared")


def test_a_rule_applies_all_its_actions_in_turn():
    one = rule("one", ALWAYS, [{"rename_payee": " REWE "}, {"set_category": "Groceries"}, {"add_tag": "food"}])
    outcome = apply_rules([one], facts(), matcher=STD)
    assert (outcome.payee, outcome.category, outcome.tags) == ("REWE", "Groceries", ("food",))


# --- user locks -------------------------------------------------------------------------------


def test_a_category_set_by_hand_is_never_overwritten():
    rules = [rule("r", ALWAYS, [{"set_category": "Groceries"}, {"add_tag": "food"}], stage="post")]
    outcome = apply_rules(rules, facts(), frozenset({"category"}), matcher=STD)
    assert outcome.category is None and outcome.category_rule_id is None
    assert outcome.tags == ("food",) and outcome.matched == ("r",)


def test_a_payee_set_by_hand_is_never_renamed_and_later_rules_see_the_original():
    rules = [
        rule("rename", ALWAYS, [{"rename_payee": "Lidl"}], stage="pre"),
        rule("cat", leaf("payee", "contains", "lidl"), [{"set_category": "Groceries"}]),
    ]
    outcome = apply_rules(rules, facts(), frozenset({"payee"}), matcher=STD)
    assert outcome.payee == "REWE Markt #1234"
    assert outcome.category is None and outcome.matched == ("rename",)
    unlocked = apply_rules(rules, facts(), matcher=STD)
    assert (unlocked.payee, unlocked.category) == ("Lidl", "Groceries")


# --- learning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "normalized"), [
    ("REWE Markt #1234", "rewe markt"),
    ("  rewe   MARKT  ", "rewe markt"),
    ("REWE Markt 0815", "rewe markt"),
    ("AMAZON.DE*2X3Y4", "amazon de"),
    ("Shell *1234", "shell"),
    ("PAYPAL *NETFLIX", "paypal netflix"),
    ("McDonald's # 12", "mcdonalds"),
    ("7-Eleven 42", "7 eleven"),
    ("1&1 Telecom", "1 1 telecom"),
    ("Straße", "strasse"),
    ("#1234", ""),
])
def test_normalize_payee(raw, normalized):
    assert normalize_payee(raw) == normalized
    assert normalize_payee(normalized) == normalized


def test_a_learned_rule_categorizes_the_same_payee_next_time():
    data = learned_rule("REWE Markt #1234", " Groceries ")
    assert data["conditions"] == {"field": "payee", "op": "is", "value": "rewe markt"}
    assert data["actions"] == [{"set_category": "Groceries"}]
    assert (data["stage"], data["order"], data["learned"]) == ("default", LEARNED_ORDER, True)
    learned = parse_rule("learned-1", data, STD)
    outcome = apply_rules([learned], facts(payee="rewe MARKT #0042"), matcher=STD)
    assert (outcome.category, outcome.category_rule_id, outcome.category_learned) == ("Groceries", "learned-1", True)
    assert apply_rules([learned], facts(payee="Lidl"), matcher=STD).category is None


def test_a_learned_rule_beats_default_rules_but_not_post_rules():
    learned = parse_rule("learned-1", learned_rule("rewe markt", "Dining"), STD)
    general = rule("general", leaf("payee", "contains", "rewe"), [{"set_category": "Groceries"}], order=50)
    assert apply_rules([learned, general], facts(), matcher=STD).category == "Dining"
    post = rule("post", leaf("amount", "gt", "40"), [{"set_category": "Big purchase"}], stage="post")
    outcome = apply_rules([learned, general, post], facts(), matcher=STD)
    assert (outcome.category, outcome.category_learned) == ("Big purchase", False)


def test_learning_refuses_a_payee_with_nothing_left():
    with pytest.raises(RuleError, match="payee: nothing left"):
        learned_rule("#1234", "Groceries")
    with pytest.raises(RuleError, match="category.set_category: expected a non-empty string"):
        learned_rule("REWE", "  ")


# --- validation -------------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    """A chain of `depth` nodes: nots around one leaf."""
    node: dict[str, Any] = ALWAYS
    for _ in range(depth - 1):
        node = {"not": node}
    return node


@pytest.mark.parametrize(("condition", "message"), [
    ({"any": [ALWAYS, leaf("payee", "like", "x")]}, "conditions.any\\[1\\].op: unknown operator 'like'"),
    (leaf("iban", "is", "x"), "conditions.field: unknown field 'iban'"),
    (leaf(3, "is", "x"), "conditions.field: unknown field <int>"),
    (leaf("payee", "gt", "10"), "conditions.op: operator 'gt' does not apply to field 'payee'"),
    (leaf("currency", "contains", "E"), "conditions.op: operator 'contains' does not apply to field 'currency'"),
    (leaf("account", "regex", "x"), "conditions.op: operator 'regex' does not apply to field 'account'"),
    (leaf("payee", "is", 5), "conditions.value: expected a string, not int"),
    (leaf("payee", "contains", "   "), "conditions.value: must not be empty"),
    (leaf("payee", "is", "#12"), "conditions.value: must not be empty"),
    (leaf("payee", "is", "x" * 201), "conditions.value: longer than 200 characters"),
    (leaf("payee", "is", "x", negate="yes"), "conditions.negate: must be true or false"),
    ({"field": "payee", "op": "is"}, "conditions: missing 'value'"),
    ({**ALWAYS, "extra": 1}, "conditions: unknown key\\(s\\) 'extra'"),
    ("payee is rewe", "conditions: expected an object"),
    ({"all": [ALWAYS], "any": [ALWAYS]}, "conditions: a group has exactly one key"),
    ({"all": []}, "conditions.all: expected a non-empty list"),
    ({"any": ALWAYS}, "conditions.any: expected a non-empty list"),
    ({"all": [ALWAYS, {"not": 1}]}, "conditions.all\\[1\\].not: expected an object"),
    (leaf("payee", "one_of", []), "conditions.value: 'one_of' takes a non-empty list"),
    (leaf("payee", "one_of", "rewe"), "conditions.value: 'one_of' takes a non-empty list"),
    (leaf("payee", "one_of", ["a"] * 101), "conditions.value: 'one_of' takes at most 100 values"),
    (leaf("payee", "one_of", ["a", 2]), "conditions.value\\[1\\]: expected a string"),
    (leaf("amount", "gt", 10), "conditions.value: amounts are decimal strings"),
    (leaf("amount", "gt", 10.5), "conditions.value: amounts are decimal strings"),
    (leaf("amount", "lt", "-5"), "conditions.value: '-5' is not a non-negative decimal"),
    (leaf("amount", "is", "1e3"), "is not a non-negative decimal"),
    (leaf("amount", "is", "NaN"), "is not a non-negative decimal"),
    (leaf("amount", "between", ["10", "5"]), "conditions.value: low 10 is greater than high 5"),
    (leaf("amount", "between", ["10"]), "conditions.value: 'between' takes a list \\[low, high\\]"),
    (leaf("amount", "between", "5-10"), "'between' takes a list"),
    (leaf("amount", "between", ["1", "x"]), "conditions.value\\[1\\]: 'x' is not a non-negative decimal"),
    (leaf("amount", "one_of", ["1", 2]), "conditions.value\\[1\\]: amounts are decimal strings"),
    (leaf("amount", "contains", "1"), "operator 'contains' does not apply to field 'amount'"),
    (leaf("payee", "regex", "(unclosed"), "conditions.value: invalid regular expression"),
    (leaf("payee", "regex", ""), "conditions.value: expected a non-empty regular expression"),
    (leaf("payee", "regex", "a" * 501), "conditions.value: regular expression longer than 500 characters"),
    (_nested(MAX_DEPTH + 1), "conditions(\\.not){10}: conditions nest deeper than 10 levels"),
    ({"any": [ALWAYS] * (MAX_NODES + 1)}, "conditions.any: more than 100 conditions"),
    ({"all": [{"any": [ALWAYS] * 60}, {"any": [ALWAYS] * 60}]}, "conditions.all\\[1\\].any\\[37\\]: more than 100"),
])
def test_invalid_conditions_are_refused_with_the_path(condition, message):
    with pytest.raises(RuleError, match=message):
        parse_condition(condition, STD)


def test_the_limits_themselves_are_accepted():
    assert parse_condition(_nested(MAX_DEPTH), STD)
    assert holds({"any": [ALWAYS] * (MAX_NODES - 1)})


def test_regex_is_checked_with_the_injected_matcher():
    with pytest.raises(RuleError, match="invalid regular expression"):
        parse_condition(leaf("payee", "regex", "a{2,1}"), TimedMatcher())
    assert parse_condition(leaf("payee", "regex", r"\p{L}+"), TimedMatcher()).value == r"\p{L}+"
    with pytest.raises(RuleError, match="invalid regular expression"):
        parse_condition(leaf("payee", "regex", r"\p{L}+"), STD)


@pytest.mark.parametrize(("actions", "message"), [
    ([], "actions: expected a non-empty list of actions"),
    ({"set_category": "x"}, "actions: expected a non-empty list"),
    ([{"add_tag": "t"}] * 11, "actions: at most 10 actions"),
    ([{"delete": "x"}], "actions\\[0\\]: unknown action 'delete'"),
    ([{"add_tag": "a", "set_category": "b"}], "actions\\[0\\]: expected an object with exactly one"),
    (["Groceries"], "actions\\[0\\]: expected an object"),
    ([{"add_tag": "ok"}, {"set_category": " "}], "actions\\[1\\].set_category: expected a non-empty string"),
    ([{"rename_payee": 7}], "actions\\[0\\].rename_payee: expected a non-empty string"),
    ([{"add_tag": "t" * 51}], "actions\\[0\\].add_tag: longer than 50 characters"),
    ([{"set_category": "c" * 101}], "actions\\[0\\].set_category: longer than 100 characters"),
    ([{"set_category": "a"}, {"set_category": "b"}], "actions: at most one 'set_category' per rule"),
])
def test_invalid_actions_are_refused(actions, message):
    with pytest.raises(RuleError, match=message):
        parse_actions(actions)


def test_valid_actions_are_trimmed():
    parsed = parse_actions([{"set_category": " Groceries "}, {"rename_payee": "REWE  Markt"}, {"add_tag": "food"}])
    assert parsed == (Action("set_category", "Groceries"), Action("rename_payee", "REWE Markt"),
                      Action("add_tag", "food"))


@pytest.mark.parametrize(("change", "message"), [
    ({"stage": "late"}, "stage: unknown stage 'late'"),
    ({"order": -1}, "order: expected an integer from 0"),
    ({"order": True}, "order: expected an integer"),
    ({"order": "1"}, "order: expected an integer"),
    ({"name": ""}, "name: expected a non-empty string"),
    ({"enabled": "no"}, "enabled: must be true or false"),
    ({"condition": ALWAYS}, "rule: unknown key\\(s\\) 'condition'"),
    ({"actions": []}, "actions: expected a non-empty list"),
    ({"conditions": leaf("payee", "like", "x")}, "conditions.op: unknown operator 'like'"),
])
def test_invalid_rules_are_refused(change, message):
    data = {"name": "r", "conditions": ALWAYS, "actions": [{"add_tag": "t"}], **change}
    with pytest.raises(RuleError, match=message):
        parse_rule("r1", data, STD)


def test_a_rule_defaults_to_the_default_stage_enabled_and_not_learned():
    parsed = parse_rule("r1", {"name": " My  rule ", "conditions": ALWAYS, "actions": [{"add_tag": "t"}]}, STD)
    assert (parsed.name, parsed.stage, parsed.order, parsed.enabled, parsed.learned) == (
        "My rule", "default", 0, True, False)
    with pytest.raises(RuleError, match="stage"):
        Rule("x", "x", "later", 0, parsed.condition, parsed.actions)


# --- regex time bound -------------------------------------------------------------------------


def test_the_catastrophic_pattern_really_is_slow_in_the_regex_module():
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        regex.search(CATASTROPHIC_PATTERN, CATASTROPHIC_TEXT, timeout=1.0)
    assert time.perf_counter() - started >= 1.0


def test_timed_matcher_cuts_a_catastrophic_search_off():
    matcher = TimedMatcher(timeout_seconds=0.05)
    started = time.perf_counter()
    with pytest.raises(RegexTimeout):
        matcher.search(CATASTROPHIC_PATTERN, CATASTROPHIC_TEXT)
    assert time.perf_counter() - started < 0.5
    assert matcher.search(r"^a+!$", CATASTROPHIC_TEXT.upper())
    assert not matcher.search(r"^b", CATASTROPHIC_TEXT)


def test_timed_matcher_refuses_bad_patterns_and_timeouts():
    with pytest.raises(RuleError, match="invalid regular expression"):
        TimedMatcher().compile_check("(")
    with pytest.raises(ValueError, match="positive"):
        TimedMatcher(timeout_seconds=0)


def test_a_catastrophic_regex_rule_is_skipped_and_recorded_without_hanging_the_others():
    matcher = TimedMatcher(timeout_seconds=0.05)
    rules = [
        rule("evil", leaf("description", "regex", CATASTROPHIC_PATTERN), [{"set_category": "Hacked"}],
             stage="pre", matcher=matcher),
        rule("groceries", leaf("payee", "contains", "rewe"), [{"set_category": "Groceries"}], matcher=matcher),
        rule("tag", leaf("description", "regex", "^a+"), [{"add_tag": "checked"}], stage="post", matcher=matcher),
    ]
    started = time.perf_counter()
    outcome = apply_rules(rules, facts(description=CATASTROPHIC_TEXT), matcher=matcher)
    assert time.perf_counter() - started < 0.5
    assert outcome.errors == ("evil: regex timed out",)
    assert outcome.matched == ("groceries", "tag")
    assert (outcome.category, outcome.category_rule_id, outcome.tags) == ("Groceries", "groceries", ("checked",))


def test_a_prepared_rule_set_gives_exactly_what_running_every_rule_gives() -> None:
    """Indexing `payee is X` rules by payee changes nothing: 2,000 random transactions, both ways."""
    import random

    from domain.rules import apply_rule_set, prepare

    matcher = StdlibMatcher()
    payees = ["REWE", "rewe markt #12", "Lidl", "Shell 7", "Uber", "Netflix", "Kiosk", "Cafe Nord"]
    specs = [{"name": f"is {p}", "order": i, "conditions": {"field": "payee", "op": "is", "value": p},
              "actions": [{"set_category": f"C{i}"}, {"add_tag": f"t{i}"}]} for i, p in enumerate(payees[:5])]
    specs += [
        {"name": "big", "stage": "post", "conditions": {"field": "amount", "op": "gt", "value": "50"},
         "actions": [{"set_category": "Big"}]},
        {"name": "not rewe", "stage": "pre", "conditions": {"field": "payee", "op": "is", "value": "rewe",
                                                            "negate": True}, "actions": [{"add_tag": "other"}]},
        {"name": "uber or kiosk", "conditions": {"any": [{"field": "payee", "op": "contains", "value": "uber"},
                                                         {"field": "payee", "op": "starts_with", "value": "kio"}]},
         "actions": [{"set_category": "Move"}]},
    ]
    rules = [parse_rule(f"r{i}", spec, matcher) for i, spec in enumerate(specs)]
    prepared = prepare(rules)
    rng = random.Random(3)
    for _ in range(2000):
        facts = Facts(payee=rng.choice(payees), description="", amount=Decimal(rng.randint(1, 9000)) / 100,
                      account="a", currency="EUR", type="expense")
        locked = frozenset(rng.choice([(), ("category",)]))
        assert apply_rule_set(prepared, facts, locked, matcher=matcher) == apply_rules(
            rules, facts, locked, matcher=matcher)
