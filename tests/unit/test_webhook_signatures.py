"""Webhook signatures: HMAC-SHA256 over "timestamp.body"; tampering, wrong secrets and old timestamps fail."""

from __future__ import annotations

import pytest

from domain.webhooks import InvalidSignature, parse, sign, signature, verify

SECRET = "whsec_test"
BODY = b'{"type":"GoalReached","amount":"12.50"}'
NOW = 1_767_225_600


def test_a_genuine_delivery_verifies_and_answers_its_timestamp() -> None:
    header = sign(SECRET, NOW, BODY)
    assert header == f"t={NOW}, v1={signature(SECRET, NOW, BODY)}"
    assert verify(SECRET, header, BODY, now=NOW + 10) == NOW


def test_the_signature_covers_timestamp_and_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == expected


@pytest.mark.parametrize("body", [BODY.replace(b"12.50", b"99.50"), BODY + b" ", b""])
def test_a_tampered_body_fails(body: bytes) -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, sign(SECRET, NOW, BODY), body, now=NOW)


def test_another_secret_fails() -> None:
    with pytest.raises(InvalidSignature):
        verify("whsec_other", sign(SECRET, NOW, BODY), BODY, now=NOW)


def test_an_old_timestamp_fails_even_with_a_valid_signature() -> None:
    header = sign(SECRET, NOW, BODY)
    with pytest.raises(InvalidSignature, match="away from now"):
        verify(SECRET, header, BODY, now=NOW + 301)
    with pytest.raises(InvalidSignature, match="away from now"):
        verify(SECRET, header, BODY, now=NOW - 301)


def test_a_replayed_timestamp_cannot_be_swapped_for_a_fresh_one() -> None:
    old = sign(SECRET, NOW - 3600, BODY)
    forged = old.replace(f"t={NOW - 3600}", f"t={NOW}")
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, forged, BODY, now=NOW)


@pytest.mark.parametrize("header", ["", "t=abc, v1=00", f"t={NOW}", "v1=00", "garbage"])
def test_a_malformed_header_fails(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=NOW)


def test_several_signatures_are_accepted_during_secret_rotation() -> None:
    header = f"t={NOW}, v1={signature('old', NOW, BODY)}, v1={signature(SECRET, NOW, BODY)}"
    assert parse(header)[0] == NOW
    assert verify(SECRET, header, BODY, now=NOW) == NOW
