"""A webhook receiver on 127.0.0.1: one path per test, each verifying deliveries with its own secret through the
same domain.webhooks.verify a real receiver would use."""

from __future__ import annotations

import json
import time
from typing import Any

from domain.webhooks import HEADER, InvalidSignature, verify
from tests.support.fake_sendgrid import Answer, FakeHttpService, Recorded


class WebhookReceiver(FakeHttpService):
    """Records deliveries per path; answers 200 to genuine ones, 401 to bad signatures (scripts come first)."""

    name = "webhook-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}

    def expect(self, path: str, secret: str) -> None:
        """Verify deliveries to `path` with `secret`."""
        self.secrets[path] = secret

    def read(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
        """The path, the document and whether its signature verified."""
        secret = self.secrets.get(path)
        try:
            verify(secret or "", headers.get(HEADER, ""), body, int(time.time()))
            verified, problem = secret is not None, ""
        except InvalidSignature as exc:
            verified, problem = False, str(exc)
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            document = {}
        return path, {"document": document, "verified": verified, "problem": problem}

    def answer(self, request: Recorded) -> Answer:
        """200 for a genuine delivery, 401 otherwise."""
        if not request.data["verified"]:
            return 401, {"Content-Type": "application/json"}, b'{"error":"bad signature"}'
        return 200, {"Content-Type": "application/json"}, b'{"ok":true}'

    def deliveries(self, path: str, verified_only: bool = True) -> list[Recorded]:
        """What reached one path."""
        return [r for r in self.for_key(path) if r.data["verified"] or not verified_only]
