"""Payee normalization: one merchant written many ways is one payee."""

from __future__ import annotations

import pytest

from domain.insights.payees import display_name, payee_key


@pytest.mark.parametrize("written", ["NETFLIX.COM 1234*AB", "Netflix", "netflix.com", "PAYPAL *NETFLIX 4029357733",
                                     "Kartenzahlung NETFLIX 15.10.2026", "NETFLIX INC.", "  netflix  "])
def test_ways_of_writing_netflix_are_one_payee(written: str) -> None:
    assert payee_key(written) == "netflix"


@pytest.mark.parametrize(("written", "key"), [
    ("SQ *BLUE BOTTLE COFFEE", "blue bottle coffee"),
    ("REWE Markt GmbH 0815", "rewe markt"),
    ("Amazon.de*2K4LM", "amazon"),
    ("E.ON Energie 2026-10-01", "eon energie"),
    ("POS PURCHASE SHELL 00123", "shell"),
])
def test_references_dates_and_legal_forms_are_dropped(written: str, key: str) -> None:
    assert payee_key(written) == key


def test_different_merchants_stay_different() -> None:
    assert payee_key("Netflix") != payee_key("Spotify")
    assert payee_key("REWE") != payee_key("Aldi")


def test_a_payee_of_only_numbers_is_kept_as_written() -> None:
    assert payee_key("12345") == "12345"
    assert payee_key("") == ""


def test_display_name_capitalizes_words() -> None:
    assert display_name("blue bottle coffee") == "Blue Bottle Coffee"
