"""A local stand-in for Twilio's Messages API (POST /2010-04-01/Accounts/{sid}/Messages.json), for the real SDK."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from tests.support.fake_sendgrid import Answer, FakeHttpService, Recorded


class FakeTwilio(FakeHttpService):
    """Twilio's message create: 201 with a message sid; 401 without the right account and token."""

    name = "fake-twilio"

    def __init__(self, sid: str = "AC" + "0" * 32, token: str = "fake-auth-token", from_number: str = "+15005550006"
                 ) -> None:
        super().__init__()
        self.sid, self.token, self.from_number = sid, token, from_number

    def read(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
        """The recipient's number and the message."""
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        return form.get("To", ""), {"to": form.get("To"), "from": form.get("From"), "body": form.get("Body")}

    def answer(self, request: Recorded) -> Answer:
        """201 Created with the message, as Twilio answers."""
        if request.path != f"/2010-04-01/Accounts/{self.sid}/Messages.json" or request.method != "POST":
            return 404, {"Content-Type": "application/json"}, b'{"code":20404,"message":"not found","status":404}'
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return 401, {"Content-Type": "application/json"}, b'{"code":20003,"message":"Authenticate","status":401}'
        message = {"sid": "SM" + uuid.uuid4().hex, "account_sid": self.sid, "to": request.data["to"],
                   "from": request.data["from"], "body": request.data["body"], "status": "queued",
                   "num_segments": "1", "direction": "outbound-api"}
        return 201, {"Content-Type": "application/json"}, json.dumps(message).encode()

    def error(self, status: int, request: Recorded) -> Answer:
        """Twilio's error shape."""
        return status, {"Content-Type": "application/json"}, json.dumps(
            {"code": 21211 if status == 400 else 20500, "message": f"scripted {status}", "status": status}).encode()

    def texts(self, to: str, accepted: bool = True) -> list[dict]:
        """The messages one number got (only those answered 2xx when `accepted`)."""
        return [r.data for r in self.for_key(to) if not accepted or 200 <= r.status < 300]
