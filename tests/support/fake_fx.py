"""A local stand-in for the live FX provider: speaks the Frankfurter JSON API on 127.0.0.1, and can fail on cue.

    GET /2026-01-15?from=USD&to=EUR  ->  {"amount":1.0,"base":"USD","date":"2026-01-15","rates":{"EUR":0.9123}}

Modes: "ok" answers from its table (404 for a pair it does not know), "fail" answers 500, "hang" accepts the
request and never answers (until the server stops), "trickle" sends the headers and then one byte a second.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "fail", "hang", "trickle")


class FakeFx:
    """The fake provider: a table of rates, a mode, and the requests it received."""

    def __init__(self, rates: dict[tuple[str, str], str] | None = None, *, published: dt.date | None = None,
                 window: tuple[dt.date, dt.date] | None = None) -> None:
        self.rates: dict[tuple[str, str], Decimal] = {k: Decimal(v) for k, v in (rates or {}).items()}
        #: When set, every answer says the rate was published on this date (or the date asked for, if earlier).
        self.published = published
        #: When set, only dates in this range have rates (404 for others): a test's fake never feeds another's.
        self.window = window
        self.mode = "ok"
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-fx", daemon=True)

    def start(self) -> FakeFx:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop serving."""
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, mode: str) -> None:
        """Switch behaviour: ok, fail, hang or trickle."""
        assert mode in MODES, mode
        self.mode = mode

    def count(self, base: str | None = None, quote: str | None = None) -> int:
        """How many requests arrived (for one pair, when given)."""
        with self._lock:
            return sum(1 for _, b, q in self.requests if base in (None, b) and quote in (None, q))

    def _record(self, day: str, base: str, quote: str) -> None:
        with self._lock:
            self.requests.append((day, base, quote))

    def answer(self, day: str, base: str, quote: str) -> tuple[int, bytes]:
        """What mode "ok" answers to one request."""
        try:
            asked = dt.date.fromisoformat(day)
        except ValueError:
            return 404, b'{"message":"not found"}'
        rate = self.rates.get((base, quote))
        outside = self.window is not None and not self.window[0] <= asked <= self.window[1]
        if rate is None or outside:
            return 404, b'{"message":"not found"}'
        on = min(asked, self.published) if self.published else asked
        # Written by hand so the number goes out exactly as in the table (json.dumps would need a float).
        body = (f'{{"amount":1.0,"base":{json.dumps(base)},"date":"{on.isoformat()}",'
                f'"rates":{{{json.dumps(quote)}:{rate}}}}}')
        return 200, body.encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                day, base, quote = parts.path.strip("/"), query.get("from", [""])[0], query.get("to", [""])[0]
                fake._record(day, base, quote)
                mode = fake.mode
                if mode == "hang":
                    fake._released.wait(120)
                    return
                if mode == "fail":
                    self._send(500, b'{"message":"internal error"}')
                    return
                status, body = fake.answer(day, base, quote)
                if mode == "trickle":
                    self._trickle(body)
                    return
                self._send(status, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _trickle(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    if fake._released.wait(0.5):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return

        return Handler
