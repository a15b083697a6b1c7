"""The real SendGrid and Twilio SDKs against local fakes, and signed webhook posts: what each answer becomes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.notify_channels import LogSink, Outgoing, SendGridEmail, TwilioSms, WebhookSender, masked
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.fake_twilio import FakeTwilio
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


def email(to: str) -> Outgoing:
    return Outgoing("n-1", "email", to, "Budget 80% reached", "You have spent €80.00.", html="<p>spent</p>",
                    unsubscribe_url="http://x.test/unsub?token=t")


def test_sendgrid_gets_the_recipient_subject_text_html_and_unsubscribe_header(sendgrid: FakeSendGrid) -> None:
    channel = SendGridEmail(sendgrid.api_key, sendgrid.url, "alerts@finance.test", 2)
    outcome = channel.send(email("ann@example.com"))
    assert outcome.result == "sent" and outcome.status_code == 202 and outcome.provider_id
    [mail] = sendgrid.emails("ann@example.com")
    assert mail["subject"] == "Budget 80% reached" and mail["from"] == "alerts@finance.test"
    assert mail["text"] == "You have spent €80.00." and mail["html"] == "<p>spent</p>"
    assert mail["headers"]["List-Unsubscribe"] == "<http://x.test/unsub?token=t>"


@pytest.mark.parametrize(("answer", "result"), [(500, "retry"), (503, "retry"), (429, "retry"), (400, "failed"),
                                                (403, "failed")])
def test_sendgrid_errors_are_retried_or_failed_by_status(sendgrid: FakeSendGrid, answer: int, result: str) -> None:
    to = f"status-{answer}@example.com"
    sendgrid.script(to, answer)
    outcome = SendGridEmail(sendgrid.api_key, sendgrid.url, "a@finance.test", 2).send(email(to))
    assert (outcome.result, outcome.status_code) == (result, answer)
    assert f"SendGrid {answer}" in outcome.detail


def test_a_wrong_api_key_is_a_failure_not_a_retry(sendgrid: FakeSendGrid) -> None:
    outcome = SendGridEmail("SG.wrong", sendgrid.url, "a@finance.test", 2).send(email("key@example.com"))
    assert (outcome.result, outcome.status_code) == ("failed", 401)


def test_sendgrid_down_or_hanging_is_retried_within_the_timeout(sendgrid: FakeSendGrid) -> None:
    outcome = SendGridEmail(sendgrid.api_key, "http://127.0.0.1:9", "a@finance.test", 1).send(email("d@example.com"))
    assert outcome.result == "retry" and outcome.status_code is None
    sendgrid.script("hang@example.com", "hang")
    outcome = SendGridEmail(sendgrid.api_key, sendgrid.url, "a@finance.test", 1).send(email("hang@example.com"))
    assert outcome.result == "retry" and "unreachable" in outcome.detail


def test_twilio_gets_the_number_sender_and_short_text(twilio: FakeTwilio) -> None:
    channel = TwilioSms(twilio.sid, twilio.token, twilio.from_number, twilio.url, 2)
    outcome = channel.send(Outgoing("n-2", "sms", "+4915112345678", "subject", "long text", sms="short text"))
    assert outcome.result == "sent" and outcome.provider_id.startswith("SM")
    assert twilio.texts("+4915112345678") == [{"to": "+4915112345678", "from": twilio.from_number,
                                               "body": "short text"}]


@pytest.mark.parametrize(("answer", "result"), [(500, "retry"), (429, "retry"), (400, "failed")])
def test_twilio_errors_are_retried_or_failed_by_status(twilio: FakeTwilio, answer: int, result: str) -> None:
    to = f"+49151000{answer}"
    twilio.script(to, answer)
    outcome = TwilioSms(twilio.sid, twilio.token, twilio.from_number, twilio.url, 2).send(
        Outgoing("n", "sms", to, "s", "t", sms="t"))
    assert (outcome.result, outcome.status_code) == (result, answer)


def test_twilio_down_is_retried(twilio: FakeTwilio) -> None:
    outcome = TwilioSms(twilio.sid, twilio.token, twilio.from_number, "http://127.0.0.1:9", 1).send(
        Outgoing("n", "sms", "+4915100000001", "s", "t", sms="t"))
    assert outcome.result == "retry" and outcome.status_code is None


def test_a_fake_that_goes_down_refuses_and_comes_back_on_the_same_port() -> None:
    fake = FakeSendGrid().start()
    try:
        channel = SendGridEmail(fake.api_key, fake.url, "a@finance.test", 1)
        fake.go_down()
        assert channel.send(email("outage@example.com")).result == "retry"
        fake.come_up()
        assert channel.send(email("outage@example.com")).result == "sent"
        assert len(fake.emails("outage@example.com")) == 1
    finally:
        fake.stop()


def test_a_webhook_post_is_signed_and_verified_by_the_receiver() -> None:
    receiver = WebhookReceiver().start()
    try:
        receiver.expect("/hook", "whsec_abc")
        sender = WebhookSender(2)
        document = {"id": "n-3", "type": "GoalReached", "data": {"saved": "10.00"}}
        assert sender.send(Outgoing("n-3", "webhook", receiver.url + "/hook", "t", "b", document=document,
                                    secret="whsec_abc")).result == "sent"
        [delivery] = receiver.deliveries("/hook")
        assert delivery.data["document"] == document and delivery.headers["X-Finance-Delivery"] == "n-3"
        outcome = sender.send(Outgoing("n-4", "webhook", receiver.url + "/hook", "t", "b", document=document,
                                       secret="whsec_wrong"))
        assert (outcome.result, outcome.status_code) == ("failed", 401)
        receiver.script("/hook", 503)
        assert sender.send(Outgoing("n-5", "webhook", receiver.url + "/hook", "t", "b", document=document,
                                    secret="whsec_abc")).result == "retry"
    finally:
        receiver.stop()


def test_the_log_sink_sends_without_revealing_addresses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    outcome = LogSink("sms").send(Outgoing("n-6", "sms", "+4915123456789", "s", "t", sms="hello"))
    assert outcome.result == "sent" and outcome.provider_id == "log"
    assert "+4915123456789" not in caplog.text and masked("+4915123456789") in caplog.text and "hello" in caplog.text
    assert masked("ann@example.com") == "a***@example.com"


def test_without_keys_email_and_sms_go_to_the_log_sink_and_with_keys_to_the_providers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import Settings
    from services.notify_channels import build_channels

    for name in ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        monkeypatch.setenv(name, "")
    bare = build_channels(Settings())
    assert (bare["email"].provider, bare["sms"].provider, bare["webhook"].provider) == ("log", "log", "webhook")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    keyed = build_channels(Settings())
    assert (keyed["email"].provider, keyed["sms"].provider) == ("sendgrid", "twilio")
