"""A lean HTTP/1.1 load generator: asyncio, keep-alive connections, open-loop pacing or closed-loop saturation.

Standard library only and one event loop, so generating load costs a small fraction of the CPU a thread pool of
`requests` sessions does, and the machine stays with the system under test. Answers must carry a Content-Length
(or end by closing the connection); a chunked answer fails the run with `ProtocolError`.

    outcome = paced("http://127.0.0.1:8000", make, on_response, rate=200, seconds=20, connections=32)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: What request i is: (path, extra headers, JSON body).
Request = tuple[str, dict[str, str], bytes]
#: Builds request i.
MakeRequest = Callable[[int], Request]
#: Told of every request: (i, status, body, wall time of the send, latency ms); status NO_ANSWER on a transport error.
OnResponse = Callable[[int, int, bytes, float, float], None]

#: The status reported when no answer came: refused, reset, closed before or while answering, timed out.
NO_ANSWER = 0
#: Pause of a connection after a transport error, so a dead server is not hammered in a tight loop.
ERROR_PAUSE_S = 0.05
#: Statuses whose answers never have a body.
BODILESS = {204, 304}
TRANSPORT_ERRORS = (OSError, EOFError, asyncio.LimitOverrunError)


class ProtocolError(Exception):
    """The server answered in a way this client does not speak (chunked encoding, a garbled status line)."""


@dataclass
class Outcome:
    """What a run did."""

    #: Requests started (answered or not).
    sent: int = 0
    #: Requests that got no answer (see NO_ANSWER).
    errors: int = 0
    #: From the first scheduled send until the last answer.
    seconds: float = 0.0
    #: Paced runs: per request, ms its send started after its scheduled time (coordinated omission, made visible).
    behind_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    host: str
    port: int
    tls: bool
    method: str
    make: MakeRequest
    on_response: OnResponse
    connections: int
    seconds: float
    timeout: float
    rate: float | None = None


def paced(url: str, make: MakeRequest, on_response: OnResponse, *, rate: float, seconds: float, connections: int,
          method: str = "POST", timeout: float = 15.0) -> Outcome:
    """Open loop: send request i at start + i/rate for `seconds`, whatever the answers, at most `connections` at
    once; a send that has to wait for a free connection is recorded in `behind_ms`."""
    return _run(_plan(url, make, on_response, connections, seconds, method, timeout, rate))


def saturate(url: str, make: MakeRequest, on_response: OnResponse, *, seconds: float, connections: int,
             method: str = "POST", timeout: float = 15.0) -> Outcome:
    """Closed loop: `connections` connections each send the next request as soon as the last one is answered,
    for `seconds`."""
    return _run(_plan(url, make, on_response, connections, seconds, method, timeout, None))


def _plan(url: str, make: MakeRequest, on_response: OnResponse, connections: int, seconds: float, method: str,
          timeout: float, rate: float | None) -> _Plan:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    return _Plan(parts.hostname, port, tls, method, make, on_response, connections, seconds, timeout, rate)


def _run(plan: _Plan) -> Outcome:
    """Run on a fresh event loop in a thread of its own, so callers need no loop (and may even have one)."""
    with ThreadPoolExecutor(1, thread_name_prefix="http-load") as pool:
        return pool.submit(asyncio.run, _main(plan)).result()


async def _main(plan: _Plan) -> Outcome:
    outcome = Outcome()
    indices = iter(range(int(plan.rate * plan.seconds))) if plan.rate else itertools.count()
    start = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(plan.connections):
                group.create_task(_worker(plan, _Connection(plan), indices, start, outcome))
    except* Exception as failed:  # the first failure (a ProtocolError, a broken callback) ends the run
        raise failed.exceptions[0] from None
    outcome.seconds = time.perf_counter() - start
    return outcome


async def _worker(plan: _Plan, conn: _Connection, indices: Iterator[int], start: float, outcome: Outcome) -> None:
    """One connection: takes the next request whenever it is free (the iterator is shared by every worker)."""
    try:
        for i in indices:
            if not await _turn(plan, i, start, outcome):
                return
            await _one(plan, conn, i, outcome)
    finally:
        await conn.close()


async def _turn(plan: _Plan, i: int, start: float, outcome: Outcome) -> bool:
    """Wait for request i's scheduled time (paced), or say whether there is time left for it (closed loop)."""
    if plan.rate is None:
        return time.perf_counter() - start < plan.seconds
    scheduled = start + i / plan.rate
    delay = scheduled - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    outcome.behind_ms.append(max(0.0, time.perf_counter() - scheduled) * 1000)
    return True


async def _one(plan: _Plan, conn: _Connection, i: int, outcome: Outcome) -> None:
    """Send request i and report its answer (or its lack of one)."""
    path, headers, body = plan.make(i)
    request = _request(plan, path, headers, body)
    outcome.sent += 1
    wall, t0 = time.time(), time.perf_counter()
    try:
        async with asyncio.timeout(plan.timeout):
            await conn.ready()
            wall, t0 = time.time(), time.perf_counter()  # latency of the request, not of connecting
            status, answer = await conn.exchange(request)
    except TRANSPORT_ERRORS:
        await conn.close()
        outcome.errors += 1
        plan.on_response(i, NO_ANSWER, b"", wall, (time.perf_counter() - t0) * 1000)
        await asyncio.sleep(ERROR_PAUSE_S)
        return
    plan.on_response(i, status, answer, wall, (time.perf_counter() - t0) * 1000)


def _request(plan: _Plan, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (f"{plan.method} {path} HTTP/1.1\r\nHost: {plan.host}:{plan.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{lines}\r\n")
    return head.encode("latin-1") + body


class _Connection:
    """One keep-alive connection, reopened after the server closes it."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def ready(self) -> None:
        """Connect, unless already connected to a server that has not hung up since."""
        if self._reader is None or self._reader.at_eof():
            await self.close()
            plan = self._plan
            self._reader, self._writer = await asyncio.open_connection(plan.host, plan.port, ssl=plan.tls or None)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; its (status, body)."""
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        await self._writer.drain()
        status, headers = _head(await self._reader.readuntil(b"\r\n\r\n"))
        body = await self._body(status, headers)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _body(self, status: int, headers: dict[str, str]) -> bytes:
        assert self._reader is not None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ProtocolError(f"chunked answers are not supported (status {status}); send a Content-Length")
        if status in BODILESS or status < 200 or self._plan.method == "HEAD":
            return b""
        if "content-length" in headers:
            return await self._reader.readexactly(int(headers["content-length"]))
        body = await self._reader.read()  # no length: the body ends when the server closes
        await self.close()
        return body

    async def close(self) -> None:
        """Hang up (a no-op when not connected)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except TRANSPORT_ERRORS:
                pass  # already gone: nothing left to close


def _head(data: bytes) -> tuple[int, dict[str, str]]:
    """(status, headers with lower-case names) of an answer's head."""
    status_line, *lines = data.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"not an HTTP status line: {status_line!r}") from None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers
