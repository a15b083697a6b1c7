"""Notification rules and content: defaults, backoff, staleness, templates in the reader's locale, unsubscribe
tokens."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from domain.notifications import (
    DEFAULTS,
    KINDS,
    backoff_ms,
    enabled,
    is_retryable,
    is_stale,
    kind_of,
    matrix,
    notification_kind,
)
from services.errors import Invalid
from services.notify_preferences import read_unsubscribe_token, unsubscribe_token
from services.notify_templates import is_locale, money, render


def test_per_transaction_notifications_are_off_by_default_and_security_goes_everywhere() -> None:
    assert not any(DEFAULTS["transaction"].values())
    assert all(DEFAULTS["security"].values())
    assert not DEFAULTS["welcome"]["sms"] and DEFAULTS["welcome"]["email"]


def test_a_persons_choice_overrides_the_default() -> None:
    assert enabled("security", "sms", {}) is True
    assert enabled("security", "sms", {("security", "sms"): False}) is False
    grid = matrix({("transaction", "in_app"): True})
    assert set(grid) == set(KINDS) and grid["transaction"]["in_app"] is True and grid["transaction"]["email"] is False


def test_events_map_to_kinds() -> None:
    assert kind_of("PasswordChanged") == kind_of("LoginSucceeded") == "security"
    assert kind_of("AnomalyDetected") == "unusual_transaction"
    assert kind_of("BudgetCreated") is None


@pytest.mark.parametrize(("payload", "kind"), [({"address": "1.2.3.4", "new_device": True}, "security"),
                                               ({"address": "1.2.3.4", "new_device": False}, None),
                                               ({"address": "1.2.3.4"}, "security")])
def test_a_sign_in_notifies_only_from_a_new_device_or_when_the_event_predates_devices(payload: dict,
                                                                                     kind: str | None) -> None:
    assert notification_kind("LoginSucceeded", payload) == kind


def test_other_events_notify_whatever_their_payload_says_about_devices() -> None:
    assert notification_kind("PasswordChanged", {"new_device": False}) == "security"
    assert notification_kind("GoalReached", {}) == "goal_reached"
    assert notification_kind("LoginFailed", {"new_device": True}) is None


def test_a_new_device_alert_names_the_address_and_what_to_do_on_every_channel() -> None:
    address = "2001:db8:85a3:1234:5678:8a2e:370:7334"
    rendered = render("LoginSucceeded", {"address": address, "new_device": True}, "en")
    assert rendered.subject == "Sign-in from a new device"
    assert address in rendered.text and "new device" in rendered.text
    assert "log out everywhere and change your password" in rendered.text
    assert address in rendered.sms and rendered.sms.endswith("change your password.") and len(rendered.sms) <= 160


def test_a_sign_in_announced_before_devices_were_remembered_does_not_claim_a_new_device() -> None:
    rendered = render("LoginSucceeded", {"address": "1.2.3.4"}, "en")
    assert rendered.subject == "New sign-in to your account" and "new device" not in rendered.text + rendered.sms
    assert "1.2.3.4" in rendered.text and "change your password" in rendered.text


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_ms(n, 200, 1000) for n in range(1, 8)]
    assert delays == [200, 400, 800, 1000, 1000, 1000, 1000]
    assert backoff_ms(10_000, 1000, 300_000) == 300_000


@pytest.mark.parametrize(("status", "retry"), [(None, True), (408, True), (429, True), (500, True), (503, True),
                                               (400, False), (401, False), (404, False), (422, False)])
def test_only_no_answer_429_and_5xx_are_retried(status: int | None, retry: bool) -> None:
    assert is_retryable(status) is retry


def test_an_sms_older_than_the_limit_is_stale() -> None:
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    assert is_stale(now - dt.timedelta(seconds=901), now, 900)
    assert not is_stale(now - dt.timedelta(seconds=899), now, 900)


def test_amounts_are_written_in_the_readers_locale_and_currency() -> None:
    payload = {"threshold": 80, "spent": "1234.50", "limit": "1500.00", "currency": "EUR", "percent": "82.30",
               "period": "2026-11"}
    german = render("BudgetThresholdCrossed", payload, "de_DE")
    english = render("BudgetThresholdCrossed", payload, "en")
    assert "1.234,50\xa0€" in german.text and "1.500,00\xa0€" in german.text
    assert "€1,234.50" in english.text
    assert money("1000", "JPY", "en") == "¥1,000"
    assert money("12.345", "BHD", "en").endswith("12.345")


def test_every_template_has_a_short_sms_and_escaped_html() -> None:
    payload = {"name": "<script>", "base_currency": "EUR"}
    rendered = render("UserRegistered", payload, "en")
    assert len(rendered.sms) <= 160
    page = rendered.html("https://example.test/unsub?token=a&b")
    assert "<script>" not in page and "&lt;script&gt;" in page and "token=a&amp;b" in page


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert not is_locale("xx_YY") and is_locale("de_DE") and is_locale("fr-CH")
    assert money("5", "USD", "xx_YY") == "$5.00"


def test_an_unsubscribe_token_names_one_person_and_one_kind_and_cannot_be_forged() -> None:
    user = uuid.uuid4()
    token = unsubscribe_token(user, "budget_threshold", "secret")
    assert read_unsubscribe_token(token, "secret") == (user, "budget_threshold")
    for bad in (token + "x", token.replace(".", ".A"), unsubscribe_token(user, "security", "other"), "nonsense"):
        with pytest.raises(Invalid):
            read_unsubscribe_token(bad, "secret")


def _verdict_after(attempt: int, result: str, channel: str = "email") -> tuple[str, int | None, str | None]:
    from types import SimpleNamespace

    from services.notify_channels import Outcome
    from services.notify_delivery import Policy, _verdict

    policy = Policy(min_backoff_ms=200, max_backoff_ms=1000, max_attempts=5, webhook_max_attempts=3,
                    sms_max_age_seconds=900, lease_seconds=300)
    return _verdict(SimpleNamespace(attempts=attempt, channel=channel), Outcome(result, 500, "boom"), policy)


def test_a_retryable_answer_is_queued_again_with_backoff_until_the_channels_budget_is_spent() -> None:
    assert _verdict_after(1, "retry") == ("queued", 200, "boom")
    assert _verdict_after(4, "retry") == ("queued", 1000, "boom")
    assert _verdict_after(5, "retry") == ("failed", None, "gave up after 5 attempts: boom")
    assert _verdict_after(3, "retry", "webhook")[0] == "failed"
    assert _verdict_after(1, "failed") == ("failed", None, "boom")
    assert _verdict_after(1, "sent") == ("sent", None, None)
    assert _verdict_after(1, "skipped") == ("skipped", None, "boom")


def test_a_payload_the_template_does_not_fit_still_notifies_plainly() -> None:
    rendered = render("BudgetThresholdCrossed", {"threshold": 80}, "en")
    assert "BudgetThresholdCrossed" in rendered.subject and len(rendered.sms) <= 160
