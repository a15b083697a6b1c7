"""Payee normalization: bank statements write one merchant many ways ("NETFLIX.COM 1234*AB" is "Netflix")."""

from __future__ import annotations

import re
from functools import lru_cache

#: Card processors and wallets that prefix the merchant ("PAYPAL *NETFLIX", "SQ *BLUE BOTTLE").
_PROCESSORS = frozenset({"paypal", "pp", "sq", "sumup", "zettle", "izettle", "sp", "tst", "google", "apple"})
#: Words that say how a payment was made, not who was paid.
_NOISE = frozenset({"pos", "card", "purchase", "debit", "credit", "payment", "sepa", "lastschrift", "kartenzahlung",
                    "ec", "visa", "mastercard", "contactless", "online", "ref", "txn", "www", "recurring"})
#: Legal forms that some statements append and others do not.
_LEGAL = frozenset({"gmbh", "ag", "inc", "ltd", "llc", "plc", "sa", "sarl", "bv", "co", "corp", "kg", "ohg", "se"})
#: Web suffixes: "netflix.com" is Netflix.
_DOMAIN = re.compile(r"\.(com|net|org|de|co\.uk|co|io|eu|fr|es|it|nl|at|ch|uk|us|app|tv)\b")
#: Dates as statements print them (2026-10-15, 15.10.2026, 15/10, 10/15/26).
_DATE = re.compile(r"\b\d{1,4}[./-]\d{1,2}(?:[./-]\d{2,4})?\b")
_NON_WORD = re.compile(r"[^a-z]+")
#: A dot inside a name ("E.ON", "H.M") is part of it.
_INNER_DOT = re.compile(r"(?<=[a-z])\.(?=[a-z])")


@lru_cache(maxsize=8192)
def payee_key(payee: str) -> str:
    """The normalized key of a payee: lowercase merchant words without numbers, dates, references, punctuation,
    processor prefixes and legal forms; the lowercased text itself when nothing is left."""
    text = _DATE.sub(" ", (payee or "").lower())
    head, star, tail = text.partition("*")
    if star:  # "paypal *netflix" names the merchant after the star; "netflix.com 1234*ab" a reference after it
        text = tail if head.strip() in _PROCESSORS or not _words(head) else head
    text = _INNER_DOT.sub("", _DOMAIN.sub(" ", text))
    words = [w for w in _words(text) if w not in _NOISE and w not in _LEGAL]
    if words and words[0] in _PROCESSORS and len(words) > 1:
        words = words[1:]
    return " ".join(words) or " ".join((payee or "").lower().split())


def display_name(key: str) -> str:
    """A payee key as people write it ("netflix" -> "Netflix")."""
    return " ".join(w.capitalize() for w in key.split())


def _words(text: str) -> list[str]:
    """The words of `text` that carry no digits (card numbers, references and store numbers have them)."""
    return [w for w in (_NON_WORD.sub(" ", t).strip() for t in text.split() if not any(c.isdigit() for c in t))
            for w in w.split() if len(w) > 1]
