"""Webhooks go to public hosts only where that is required (production): no loopback, private, link-local
(the cloud metadata service) or other non-public address, checked at creation and before every delivery."""

from __future__ import annotations

import pytest

from config.settings import Settings
from domain.webhooks import is_public_address
from services.errors import Invalid
from services.notify_channels import Outgoing, WebhookSender
from services.webhooks import check_url, private_target

NOT_PUBLIC = ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
              "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
              "not an address"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_a_non_public_address_is_refused(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_a_public_address_is_allowed(address):
    assert is_public_address(address)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://localhost/hook", "http://169.254.169.254/",
                                 "http://[::1]:9000/x", "http://10.0.0.5/hook"])
def test_where_private_targets_are_refused_creating_such_a_webhook_names_the_url_field(url):
    with pytest.raises(Invalid) as refused:
        check_url(url, allow_private=False)
    assert refused.value.field == "url" and "non-public address" in refused.value.message
    assert check_url(url, allow_private=True) == url  # development and tests deliver to 127.0.0.1


def test_a_public_ip_is_accepted_and_a_name_that_cannot_resolve_is_refused():
    assert private_target("https://93.184.216.34/hook") is None
    assert "does not resolve" in private_target("https://bad..host/hook")


def test_a_delivery_to_a_private_address_fails_without_a_request_and_is_not_retried():
    message = Outgoing("n1", "webhook", "http://127.0.0.1:9/hook", "", "", document={"type": "X"}, secret="s")
    outcome = WebhookSender(timeout=2, allow_private=False).send(message)
    assert outcome.result == "failed" and outcome.detail.startswith("refused: ")
    # allowed, the same delivery is attempted: nothing listens on port 9, so it is a retry, not a refusal
    assert WebhookSender(timeout=2, allow_private=True).send(message).result == "retry"


def test_production_refuses_private_targets_by_default_and_development_allows_them(monkeypatch):
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", raising=False)
    monkeypatch.setenv("FINANCE_ENV", "development")
    assert Settings().webhook_allow_private_addresses is True
    monkeypatch.setenv("FINANCE_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ENCRYPTION_KEYS", "k")
    assert Settings().webhook_allow_private_addresses is False
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    assert Settings().webhook_allow_private_addresses is True
