"""Default categories and the keyword rules that categorize a new household's transactions."""

from __future__ import annotations

from dataclasses import dataclass

#: Categories every new household starts with.
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Groceries", "Dining", "Transport", "Housing", "Utilities", "Entertainment",
    "Health", "Shopping", "Travel", "Income", "Transfers", "Uncategorized",
)

#: Keyword rules for the defaults; the first match wins.
KEYWORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Groceries", ("grocer", "supermarket", "aldi", "lidl", "rewe", "edeka", "tesco", "carrefour",
                   "whole foods", "safeway", "market")),
    ("Dining", ("restaurant", "cafe", "coffee", "starbucks", "pizza", "bistro", "bakery")),
    ("Transport", ("uber", "taxi", "fuel", "petrol", "shell", "railway", "train", "metro", "bus ")),
    ("Housing", ("rent", "mortgage", "landlord")),
    ("Utilities", ("electric", "water bill", "internet", "phone bill", "gas bill")),
    ("Entertainment", ("netflix", "spotify", "cinema", "theatre", "concert")),
    ("Health", ("pharmacy", "doctor", "dentist", "hospital")),
    ("Travel", ("hotel", "airbnb", "airline", "flight")),
    ("Shopping", ("amazon", "ikea", "zalando")),
)

#: Where a transaction's category came from.
SOURCES = ("user", "rule", "learned", "default")


@dataclass(frozen=True)
class Categorized:
    """The category chosen for a transaction and how it was chosen."""

    name: str
    source: str


def categorize(kind: str, payee: str, description: str, requested: str | None) -> Categorized:
    """Choose a category: the user's choice wins, then keyword rules, then a default."""
    if requested:
        return Categorized(requested, "user")
    if kind == "income":
        return Categorized("Income", "default")
    if kind == "transfer":
        return Categorized("Transfers", "default")
    text = f" {payee} {description} ".lower()
    for name, keywords in KEYWORD_RULES:
        if any(word in text for word in keywords):
            return Categorized(name, "rule")
    return Categorized("Uncategorized", "default")
