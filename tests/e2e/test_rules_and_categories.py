"""Rules and categories over HTTP: rules categorize, never override the user, apply over history; merges."""

from __future__ import annotations

import pytest

from tests.support.client import ApiClient
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def _recorded(user: ApiClient, account_id: str, amount: str, payee: str, **extra) -> dict:
    txn_id = user.post_transaction(account_id, amount, payee, **extra).json()["id"]
    return wait_for(lambda: (t := user.get(f"/api/v1/transactions/{txn_id}").json())["status"] == "recorded" and t,
                    timeout=10, what="recorded")


GYM = {"name": "Gym", "conditions": {"any": [{"field": "payee", "op": "contains", "value": "fitness"},
                                             {"all": [{"field": "description", "op": "starts_with", "value": "gym"},
                                                      {"not": {"field": "amount", "op": "gt", "value": "100"}}]}]},
       "actions": [{"set_category": "Health"}, {"add_tag": "sport"}]}


def test_a_rule_categorizes_new_transactions_but_never_overrides_the_user(stack: Stack, user: ApiClient) -> None:
    """Given a rule (OR of a payee match and an AND with a NOT), matching purchases get its category and tag,
    a purchase the user categorized keeps the user's category."""
    account = user.open_account("EUR")
    rule = user.post("/api/v1/rules", GYM)
    assert rule.status_code == 201, rule.text
    by_payee = _recorded(user, account["id"], "30.00", "City Fitness")
    assert (by_payee["category"], by_payee["category_source"], by_payee["tags"]) == ("Health", "rule", ["sport"])
    by_description = _recorded(user, account["id"], "40.00", "ACME", description="Gym membership")
    assert by_description["category"] == "Health"
    too_big = _recorded(user, account["id"], "150.00", "ACME", description="Gym equipment")
    assert too_big["category"] == "Uncategorized"
    users_choice = _recorded(user, account["id"], "30.00", "City Fitness", category="Entertainment")
    assert (users_choice["category"], users_choice["category_source"]) == ("Entertainment", "user")


def test_applying_a_rule_over_history_recategorizes_and_budgets_follow(stack: Stack, user: ApiClient) -> None:
    """Given earlier purchases the new rule matches, applying it moves them and the Health budget counts them."""
    account = user.open_account("EUR")
    budget = user.create_budget("Health", "100.00")
    old = [_recorded(user, account["id"], "20.00", "Fitness First") for _ in range(3)]
    locked = _recorded(user, account["id"], "20.00", "Fitness First", category="Entertainment")
    assert user.budget_status(budget["id"])["spent"] == "0.00"
    rule = user.post("/api/v1/rules", GYM).json()
    assert user.post(f"/api/v1/rules/{rule['id']}/apply").status_code == 202
    status = wait_for(lambda: (s := user.budget_status(budget["id"]))["spent"] == "60.00" and s, timeout=15,
                      what="the budget recounted")
    assert status["thresholds_crossed"] == [50]
    assert all(user.get(f"/api/v1/transactions/{t['id']}").json()["category"] == "Health" for t in old)
    assert user.get(f"/api/v1/transactions/{locked['id']}").json()["category"] == "Entertainment"


@pytest.mark.parametrize("conditions, field", [
    ({"field": "payee", "op": "like", "value": "x"}, "conditions"),
    ({"field": "amount", "op": "between", "value": ["10", "5"]}, "conditions"),
    ({"field": "payee", "op": "regex", "value": "(unclosed"}, "conditions"),
])
def test_a_broken_rule_is_refused_naming_where(stack: Stack, user: ApiClient, conditions: dict, field: str) -> None:
    """Bad operators, reversed ranges and invalid patterns answer 422 and store nothing."""
    r = user.post("/api/v1/rules", {"name": "bad", "conditions": conditions, "actions": [{"set_category": "Dining"}]})
    assert r.status_code == 422
    assert any(key.startswith(field) for key in r.json()["errors"]), r.json()
    assert user.get("/api/v1/rules").json()["items"] == []


def test_an_action_naming_an_unknown_category_is_refused(stack: Stack, user: ApiClient) -> None:
    """A rule can only set categories that exist."""
    r = user.post("/api/v1/rules", {**GYM, "actions": [{"set_category": "Nope"}]})
    assert r.status_code == 422 and "actions" in r.json()["errors"]


def test_categories_nest_rename_and_merge_and_budgets_follow(stack: Stack, user: ApiClient) -> None:
    """A child counts toward its parent's budget; merging a category moves its spending and budgets."""
    account = user.open_account("EUR")
    groceries = user.create_budget("Groceries", "100.00")
    organic = user.post("/api/v1/categories", {"name": "Organic", "parent_id": _id(user, "Groceries")}).json()
    _recorded(user, account["id"], "30.00", "Farm shop", category="Organic")
    assert user.budget_status(groceries["id"])["spent"] == "30.00"
    assert user.request("PATCH", f"/api/v1/categories/{organic['id']}", json={"name": "Bio"}).status_code == 200
    assert user.request("PATCH", f"/api/v1/categories/{_id(user, 'Groceries')}",
                        json={"parent_id": organic["id"]}).status_code == 422

    snacks = user.post("/api/v1/categories", {"name": "Snacks"}).json()
    _recorded(user, account["id"], "25.00", "Kiosk", category="Snacks")
    assert user.request("DELETE", f"/api/v1/categories/{snacks['id']}").status_code == 409
    merged = user.request("DELETE", f"/api/v1/categories/{snacks['id']}",
                          params={"merge_into": _id(user, "Groceries")})
    assert merged.status_code == 204
    wait_for(lambda: user.budget_status(groceries["id"])["spent"] == "55.00", timeout=10, what="the merge counted")
    assert "Snacks" not in [c["name"] for c in user.get("/api/v1/categories").json()["items"]]


def _id(user: ApiClient, name: str) -> str:
    return next(c["id"] for c in user.get("/api/v1/categories").json()["items"] if c["name"] == name)
