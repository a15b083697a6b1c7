"""A local stand-in for SendGrid's v3 API (POST /v3/mail/send), so the real SDK makes real HTTP calls.

Also the base of the other fakes (Twilio, webhook receivers): a threaded HTTP server on 127.0.0.1 that records
every request and answers from a script per recipient -- a status (500, 429, 400...), or "hang" -- then its
default; `go_down()` closes the listening socket (connections refused) and `come_up()` opens it again on the
same port.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: An answer: (status, headers, body).
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: Who it was for (an email address, a phone number, a webhook path).
    key: str
    status: int = 0
    data: dict[str, Any] = field(default_factory=dict)


class FakeHttpService:
    """A recording, scriptable HTTP server; subclasses say how to read a request and answer it."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[str, list[int | str]] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeHttpService:
        """Serve in a background thread (on the same port again after go_down)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop serving."""
        self._released.set()
        self.go_down()

    def go_down(self) -> None:
        """Close the listening socket: new connections are refused (a provider outage)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def come_up(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self.start()

    def script(self, key: str, *answers: int | str) -> None:
        """The next requests for `key` get these answers in order (a status, or "hang"), then the default."""
        with self._lock:
            self._scripts.setdefault(key, []).extend(answers)

    def for_key(self, key: str) -> list[Recorded]:
        """The requests for one recipient, in order."""
        with self._lock:
            return [r for r in self.requests if r.key == key]

    def _next_answer(self, key: str) -> int | str | None:
        with self._lock:
            queue = self._scripts.get(key)
            return queue.pop(0) if queue else None

    # --- what subclasses say ----------------------------------------------------------------------------------

    def read(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
        """(recipient key, parsed data) of a request."""
        return path, {}

    def answer(self, request: Recorded) -> Answer:
        """The default answer."""
        return 200, {"Content-Type": "application/json"}, b"{}"

    def error(self, status: int, request: Recorded) -> Answer:
        """A scripted error answer."""
        return status, {"Content-Type": "application/json"}, json.dumps({"error": f"scripted {status}"}).encode()

    # --- the server -------------------------------------------------------------------------------------------

    def _serve(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        key, data = self.read(method, path, headers, body)
        request = Recorded(method, path, headers, body, key, data=data)
        scripted = self._next_answer(key)
        if scripted == "hang":
            with self._lock:
                self.requests.append(request)
            self._released.wait(120)
            return None
        status, out_headers, out = self.error(int(scripted), request) if scripted else self.answer(request)
        request.status = status
        with self._lock:
            self.requests.append(request)
        return status, out_headers, out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = fake._serve(self.command, self.path, dict(self.headers.items()), body)
                if answer is None:
                    return
                status, headers, out = answer
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(out))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 - the http.server API

        return Handler


class FakeSendGrid(FakeHttpService):
    """SendGrid's mail send endpoint: 202 with an X-Message-Id; 401 without the right API key."""

    name = "fake-sendgrid"

    def __init__(self, api_key: str = "SG.fake-key-for-tests") -> None:
        super().__init__()
        self.api_key = api_key

    def read(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
        """The recipient and the mail."""
        try:
            mail = json.loads(body or b"{}")
        except ValueError:
            return "", {}
        to = mail.get("personalizations", [{}])[0].get("to", [{}])[0].get("email", "")
        contents = {c.get("type"): c.get("value") for c in mail.get("content", [])}
        return to, {"to": to, "subject": mail.get("subject"), "from": mail.get("from", {}).get("email"),
                    "text": contents.get("text/plain", ""), "html": contents.get("text/html", ""),
                    "headers": mail.get("headers", {}), "custom_args": mail.get("custom_args", {})}

    def answer(self, request: Recorded) -> Answer:
        """202 Accepted, as SendGrid answers a good request."""
        if request.path != "/v3/mail/send" or request.method != "POST":
            return 404, {}, b'{"errors":[{"message":"not found"}]}'
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {}, b'{"errors":[{"message":"The provided authorization grant is invalid"}]}'
        return 202, {"X-Message-Id": uuid.uuid4().hex}, b""

    def error(self, status: int, request: Recorded) -> Answer:
        """SendGrid's error shape."""
        return status, {"Content-Type": "application/json"}, json.dumps(
            {"errors": [{"message": f"scripted {status}", "field": None}]}).encode()

    def emails(self, to: str, subject: str | None = None, accepted: bool = True) -> list[dict]:
        """The mails one address got (only those answered 2xx when `accepted`), optionally with one subject."""
        return [r.data for r in self.for_key(to) if (not accepted or 200 <= r.status < 300)
                and (subject is None or r.data.get("subject") == subject)]


def provider_env(sendgrid: FakeSendGrid, twilio: Any) -> dict[str, str]:
    """The stack's settings that point the real SDKs at the fakes, with short retry backoffs."""
    return {"SENDGRID_API_KEY": sendgrid.api_key, "SENDGRID_HOST": sendgrid.url,
            "TWILIO_ACCOUNT_SID": twilio.sid, "TWILIO_AUTH_TOKEN": twilio.token,
            "TWILIO_FROM_NUMBER": twilio.from_number, "TWILIO_API_BASE": twilio.url,
            "NOTIFY_MIN_BACKOFF_MS": "200", "NOTIFY_MAX_BACKOFF_MS": "1000", "NOTIFY_MAX_ATTEMPTS": "100000",
            "WEBHOOK_MAX_ATTEMPTS": "4", "NOTIFY_SWEEP_SECONDS": "2", "NOTIFY_TIMEOUT_SECONDS": "3",
            "NOTIFY_SMS_MAX_AGE_SECONDS": "600"}
