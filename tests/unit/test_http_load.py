"""Tests for the benchmark's asyncio HTTP load generator, against a tiny local HTTP/1.1 server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.http_load import NO_ANSWER, MakeRequest, ProtocolError, Request, paced, saturate

#: How long /slow takes to answer.
SLOW_S = 0.2


class Handler(BaseHTTPRequestHandler):
    """Echoes the request; the path says how to answer: /status/<code>, /bye, /drop, /slow, /chunked."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out in two writes: no 40 ms delayed-ACK stall between
    server: Server

    def setup(self) -> None:
        """Count every TCP connection the client opens."""
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        """Answer as the path asks."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/drop":
            self.close_connection = True  # hang up without answering
            return
        if self.path == "/slow":
            time.sleep(SLOW_S)
        if self.path == "/chunked":
            self._chunked()
            return
        status = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/status/") else 200
        answer = json.dumps({"path": self.path, "index": self.headers["X-Index"], "body": body.decode()}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/bye":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def _chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


class Server(ThreadingHTTPServer):
    """The test server, counting connections."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.connections = 0

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Answers:
    """What the load generator reported, per request index."""

    got: dict[int, tuple[int, bytes, float, float]] = field(default_factory=dict)

    def record(self, i: int, status: int, body: bytes, wall: float, ms: float) -> None:
        """The callback."""
        self.got[i] = (status, body, wall, ms)

    def statuses(self) -> set[int]:
        """Every status seen."""
        return {status for status, *_ in self.got.values()}


@pytest.fixture
def server() -> Iterator[Server]:
    """A running test server, shut down afterwards."""
    running = Server()
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(5)


def to(path: str) -> MakeRequest:
    """A request factory: every request to `path`, numbered in a header and in its body."""

    def make(i: int) -> Request:
        return path, {"X-Index": str(i)}, json.dumps({"i": i}).encode()

    return make


def test_paced_mode_sends_every_scheduled_request_at_the_rate(server: Server) -> None:
    answers = Answers()

    outcome = paced(server.url, to("/status/202"), answers.record, rate=200, seconds=0.5, connections=4)

    assert outcome.sent == len(answers.got) == 100 and outcome.errors == 0
    sends = sorted(wall for _, _, wall, _ in answers.got.values())
    assert sends[-1] - sends[0] == pytest.approx(99 / 200, abs=0.1)
    assert 0.45 < outcome.seconds < 1.0
    assert len(outcome.behind_ms) == 100 and all(ms >= 0 for ms in outcome.behind_ms)
    assert server.connections <= 4  # kept alive, not one connection per request


def test_paced_mode_records_how_far_behind_schedule_it_fell(server: Server) -> None:
    answers = Answers()

    outcome = paced(server.url, to("/slow"), answers.record, rate=30, seconds=0.1, connections=1)

    assert outcome.sent == 3 and answers.statuses() == {200}
    # the third send, due at 67 ms, waited for two slow answers on the only connection
    assert max(outcome.behind_ms) > 2 * SLOW_S * 1000 - 100
    assert all(ms < SLOW_S * 1000 + 150 for *_, ms in answers.got.values())  # latency counts from the actual send


def test_closed_loop_keeps_every_connection_busy_for_the_duration(server: Server) -> None:
    answers = Answers()

    outcome = saturate(server.url, to("/status/200"), answers.record, seconds=0.3, connections=3)

    assert outcome.sent == len(answers.got) > 20 and outcome.errors == 0
    assert answers.statuses() == {200} and outcome.behind_ms == []
    assert 0.3 <= outcome.seconds < 1.0
    assert server.connections <= 3


def test_statuses_and_bodies_reach_the_callback(server: Server) -> None:
    answers = Answers()

    def make(i: int) -> Request:
        return (f"/status/{404 if i % 2 else 202}", {"X-Index": str(i)}, json.dumps({"i": i}).encode())

    paced(server.url, make, answers.record, rate=100, seconds=0.1, connections=2)

    assert sorted(answers.got) == list(range(10))
    for i, (status, body, _, ms) in answers.got.items():
        assert status == (404 if i % 2 else 202) and ms > 0
        assert json.loads(body) == {"path": f"/status/{status}", "index": str(i), "body": json.dumps({"i": i})}


def test_a_server_closing_after_answering_gets_a_fresh_connection(server: Server) -> None:
    answers = Answers()

    outcome = paced(server.url, to("/bye"), answers.record, rate=100, seconds=0.1, connections=1)

    assert outcome.errors == 0 and answers.statuses() == {200} and len(answers.got) == 10
    assert server.connections == 10


def test_a_server_hanging_up_without_answering_counts_as_an_error_not_a_hang(server: Server) -> None:
    answers = Answers()

    outcome = paced(server.url, to("/drop"), answers.record, rate=100, seconds=0.1, connections=2, timeout=2)

    assert outcome.sent == outcome.errors == 10 and answers.statuses() == {NO_ANSWER}
    assert outcome.seconds < 1.0


def test_an_answer_too_slow_counts_as_an_error(server: Server) -> None:
    answers = Answers()

    outcome = paced(server.url, to("/slow"), answers.record, rate=10, seconds=0.1, connections=1, timeout=SLOW_S / 4)

    assert outcome.errors == 1 and answers.got[0][0] == NO_ANSWER


def test_a_chunked_answer_fails_the_run_clearly(server: Server) -> None:
    with pytest.raises(ProtocolError, match="chunked"):
        paced(server.url, to("/chunked"), Answers().record, rate=10, seconds=0.1, connections=1)


def test_nothing_listening_counts_as_errors() -> None:
    answers = Answers()
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]

    outcome = saturate(f"http://127.0.0.1:{port}", to("/"), answers.record, seconds=0.2, connections=1)

    assert outcome.sent == outcome.errors > 0 and answers.statuses() == {NO_ANSWER}
