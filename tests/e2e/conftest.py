"""End-to-end fixtures: the whole stack running as processes, and fresh users on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import ApiClient, register
from tests.support.fake_sendgrid import FakeSendGrid, provider_env
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import Stack
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="session")
def providers() -> Iterator[tuple[FakeSendGrid, FakeTwilio, WebhookReceiver]]:
    """Local SendGrid and Twilio fakes (the real SDKs call them) and a webhook receiver, for the whole session."""
    running = (FakeSendGrid().start(), FakeTwilio().start(), WebhookReceiver().start())
    yield running
    for fake in running:
        fake.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory,
          providers: tuple[FakeSendGrid, FakeTwilio, WebhookReceiver]) -> Iterator[Stack]:
    """Web and every pool, started once for the session."""
    logdir: Path = tmp_path_factory.mktemp("stack-logs")
    running = Stack(logdir, env=provider_env(providers[0], providers[1])).start()
    yield running
    running.stop()


@pytest.fixture
def user(stack: Stack) -> ApiClient:
    """A freshly registered, logged-in user with their own household."""
    client, _ = register(stack.url)
    return client
