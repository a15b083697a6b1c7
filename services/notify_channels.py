"""The channels a notification leaves through: SendGrid email, Twilio SMS, signed webhooks, and the log sink used
when no provider keys are configured. Each turns one outgoing message into an Outcome; none raises."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol
from urllib.parse import urlsplit

import requests
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Header, Mail
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from domain.notifications import is_retryable
from domain.webhooks import HEADER, sign
from services.pinned_http import post_pinned
from services.webhooks import public_addresses

log = logging.getLogger(__name__)
# Twilio's client logs every request at INFO, the recipient's number included: keep it to warnings.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

#: How much of a provider's error body is kept as the reason.
DETAIL_MAX = 300


@dataclass(frozen=True)
class Outgoing:
    """One message ready for its channel."""

    notification_id: str
    channel: str
    to: str
    subject: str
    text: str
    html: str | None = None
    sms: str | None = None
    unsubscribe_url: str | None = None
    #: Webhooks: the JSON document and the secret that signs it.
    document: dict | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: sent, retry (worth another try), failed (never retried) or skipped."""

    result: str
    status_code: int | None = None
    detail: str = ""
    provider_id: str | None = None


class Channel(Protocol):
    """Sends one message; never raises."""

    provider: str

    def send(self, message: Outgoing) -> Outcome:
        """Hand the message over; what came of it."""


def outcome_of(status: int | None, detail: str, provider_id: str | None = None) -> Outcome:
    """An HTTP answer as an outcome: 2xx sent; no answer, 408, 429, 5xx retry; any other 4xx failed."""
    if status is not None and 200 <= status < 300:
        return Outcome("sent", status, detail[:DETAIL_MAX], provider_id)
    return Outcome("retry" if is_retryable(status) else "failed", status, detail[:DETAIL_MAX])


def masked(address: str) -> str:
    """An address or phone number as logs show it."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return address[:3] + "*" * max(len(address) - 5, 0) + address[-2:]


class SendGridEmail:
    """Email through the SendGrid SDK (its host configurable, with a timeout)."""

    provider = "sendgrid"

    def __init__(self, api_key: str, host: str, sender: str, timeout: float) -> None:
        self._api_key, self._host, self._sender, self._timeout = api_key, host, sender, timeout

    def _client(self) -> SendGridAPIClient:
        client = SendGridAPIClient(api_key=self._api_key, host=self._host)
        client.client.timeout = self._timeout
        return client

    def _mail(self, m: Outgoing) -> Mail:
        mail = Mail(from_email=self._sender, to_emails=m.to, subject=m.subject, plain_text_content=m.text,
                    html_content=m.html)
        if m.unsubscribe_url:
            mail.header = Header("List-Unsubscribe", f"<{m.unsubscribe_url}>")
        mail.custom_arg = CustomArg("notification_id", m.notification_id)
        return mail

    def send(self, message: Outgoing) -> Outcome:
        """Send one email."""
        try:
            response = self._client().send(self._mail(message))
        except HTTPError as exc:
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
            return outcome_of(exc.status_code, f"SendGrid {exc.status_code}: {body}")
        except OSError as exc:  # URLError, timeouts, refused connections
            return outcome_of(None, f"SendGrid unreachable: {exc}")
        return outcome_of(response.status_code, "accepted by SendGrid", response.headers.get("X-Message-Id"))


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, sending to a configurable base URL (a local fake in tests) with a timeout."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: object, **kwargs: object):  # noqa: ANN201 - Twilio's Response
        """The same request, to the configured base URL."""
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return super().request(method, f"{self.base_url}{parts.path}{query}", *args, **kwargs)


class TwilioSms:
    """SMS through the Twilio SDK."""

    provider = "twilio"

    def __init__(self, sid: str, token: str, sender: str, base_url: str, timeout: float) -> None:
        self._sid, self._token, self._sender = sid, token, sender
        self._base_url, self._timeout = base_url, timeout

    def send(self, message: Outgoing) -> Outcome:
        """Send one text message."""
        client = TwilioClient(self._sid, self._token, http_client=BaseUrlHttpClient(self._base_url, self._timeout))
        try:
            sent = client.messages.create(to=message.to, from_=self._sender, body=message.sms or message.text)
        except TwilioRestException as exc:
            return outcome_of(exc.status, f"Twilio {exc.status}: {exc.msg}")
        except requests.RequestException as exc:
            return outcome_of(None, f"Twilio unreachable: {type(exc).__name__}")
        return outcome_of(201, "accepted by Twilio", sent.sid)


class WebhookSender:
    """Signed POSTs to a household's webhook: HMAC-SHA256 over "timestamp.body" in X-Finance-Signature."""

    provider = "webhook"

    def __init__(self, timeout: float, allow_private: bool = True) -> None:
        self._timeout = timeout
        self._allow_private = allow_private

    def send(self, message: Outgoing) -> Outcome:
        """Deliver one document (never to a non-public address unless allowed: failed, not retried)."""
        post: Callable[..., requests.Response] = requests.post
        if not self._allow_private:
            reason, addresses = public_addresses(message.to)
            if reason:
                return Outcome("failed", None, f"refused: {reason}"[:DETAIL_MAX])
            post = partial(post_pinned, address=addresses[0])  # connect where it was checked: no second lookup
        body = json.dumps(message.document, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", HEADER: sign(message.secret or "", int(time.time()), body),
                   "X-Finance-Delivery": message.notification_id,
                   "X-Finance-Event": str((message.document or {}).get("type", "")),
                   "User-Agent": "finance-webhooks/1"}
        try:
            response = post(message.to, data=body, headers=headers, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return outcome_of(None, f"no answer: {type(exc).__name__}")
        return outcome_of(response.status_code, f"{response.status_code} {response.text[:200]}")


class LogSink:
    """Development without provider keys: the message is logged (addresses masked) and counts as sent."""

    def __init__(self, channel: str) -> None:
        self.provider = "log"
        self._channel = channel

    def send(self, message: Outgoing) -> Outcome:
        """Log one message."""
        log.info("notification %s via log sink (no %s provider configured): to=%s subject=%r text=%r",
                 message.notification_id, self._channel, masked(message.to), message.subject,
                 message.sms if self._channel == "sms" else message.text)
        return Outcome("sent", None, f"logged: no {self._channel} provider configured", "log")


def build_channels(settings: object) -> dict[str, Channel]:
    """Email, SMS and webhooks as the settings configure them: without SendGrid or Twilio keys, the log sink."""
    s = settings
    email: Channel = (SendGridEmail(s.sendgrid_api_key, s.sendgrid_host, s.notify_from_email, s.notify_timeout_seconds)
                      if s.sendgrid_api_key else LogSink("email"))
    twilio_ready = s.twilio_account_sid and s.twilio_auth_token and s.twilio_from_number
    sms: Channel = (TwilioSms(s.twilio_account_sid, s.twilio_auth_token, s.twilio_from_number, s.twilio_api_base,
                              s.notify_timeout_seconds) if twilio_ready else LogSink("sms"))
    return {"email": email, "sms": sms,
            "webhook": WebhookSender(s.notify_timeout_seconds, s.webhook_allow_private_addresses)}
