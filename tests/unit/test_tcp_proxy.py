"""Tests for the loopback TCP fault-injection proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pika
import pika.exceptions
import pytest

from tests.support.services import ensure_services
from tests.support.tcp_proxy import THREAD_NAME_PREFIX, TcpProxy

LOOPBACK = "127.0.0.1"
IO_TIMEOUT_SECONDS = 5.0


class EchoServer:
    """Threaded loopback echo server used as the proxy's target."""

    def __init__(self) -> None:
        """Bind to an ephemeral loopback port."""
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._running = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start accepting in a background thread."""
        self._running.set()
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        """Stop accepting, drop every connection and join the threads."""
        self._running.clear()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(IO_TIMEOUT_SECONDS)
        self._listener.close()

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        """Run target in a daemon thread that stop() joins."""
        thread = threading.Thread(target=target, args=args, name="echo-server", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        """Accept connections until stopped."""
        while self._running.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            self._conns.append(conn)
            self._spawn(self._echo, conn)

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        """Send every received byte straight back."""
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """Provide a running echo server."""
    server = EchoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy(echo_server: EchoServer) -> Iterator[TcpProxy]:
    """Provide a started proxy in front of the echo server."""
    with TcpProxy(LOOPBACK, echo_server.port) as started:
        yield started


def connect(port: int) -> socket.socket:
    """Open a client connection to the loopback port."""
    return socket.create_connection((LOOPBACK, port), timeout=IO_TIMEOUT_SECONDS)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly size bytes or fail on early end of stream."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        assert chunk, f"stream ended after {len(chunks)} of {size} bytes"
        chunks += chunk
    return bytes(chunks)


def assert_round_trip(port: int, payload: bytes = b"ping through the proxy") -> None:
    """Send payload through the port and expect the very same bytes back."""
    with connect(port) as client:
        client.sendall(payload)
        assert recv_exactly(client, len(payload)) == payload


def assert_closed(sock: socket.socket) -> None:
    """Expect the connection to be closed by the peer (EOF or reset)."""
    try:
        data = sock.recv(1024)
    except (ConnectionResetError, BrokenPipeError):
        return
    assert data == b""


def assert_refused_fast(port: int) -> None:
    """Expect a new connect to be refused within one second."""
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=1.0).close()
    assert time.monotonic() - started < 1.0


def proxy_threads() -> list[threading.Thread]:
    """Return the live threads that belong to any TcpProxy."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


def test_bytes_round_trip(proxy: TcpProxy) -> None:
    """A small message comes back unchanged through the proxy."""
    assert_round_trip(proxy.port)


def test_large_payload_round_trips_faithfully(proxy: TcpProxy) -> None:
    """Several megabytes of every byte value flow both ways intact while being written concurrently."""
    payload = bytes(range(256)) * 16384
    with connect(proxy.port) as client:
        sender = threading.Thread(target=client.sendall, args=(payload,), daemon=True)
        sender.start()
        echoed = recv_exactly(client, len(payload))
        sender.join(IO_TIMEOUT_SECONDS)
    assert echoed == payload


def test_several_connections_are_independent(proxy: TcpProxy) -> None:
    """Concurrent connections each get their own bytes back."""
    clients = [connect(proxy.port) for _ in range(5)]
    try:
        for index, client in enumerate(clients):
            client.sendall(f"client-{index}".encode())
        for index, client in enumerate(clients):
            assert recv_exactly(client, len(f"client-{index}")) == f"client-{index}".encode()
    finally:
        for client in clients:
            client.close()


def test_cut_closes_live_connections_and_refuses_new_ones(proxy: TcpProxy) -> None:
    """cut() drops an established connection and makes new connects fail fast."""
    with connect(proxy.port) as client:
        client.sendall(b"before")
        assert recv_exactly(client, 6) == b"before"
        proxy.cut()
        assert_closed(client)
    assert not proxy.is_listening
    assert proxy.connection_count == 0
    assert_refused_fast(proxy.port)


def test_restore_listens_again_on_the_same_port(proxy: TcpProxy) -> None:
    """restore() brings the proxy back on its original port."""
    port = proxy.port
    assert_round_trip(port)
    proxy.cut()
    assert_refused_fast(port)
    proxy.restore()
    assert proxy.port == port
    assert proxy.is_listening
    assert_round_trip(port, b"after restore")


def test_cut_and_restore_can_repeat(proxy: TcpProxy) -> None:
    """The proxy survives several cut/restore cycles with live connections."""
    for round_number in range(3):
        with connect(proxy.port) as client:
            client.sendall(b"x")
            assert recv_exactly(client, 1) == b"x"
            proxy.cut()
            assert_closed(client)
        proxy.restore()
        assert_round_trip(proxy.port, f"round {round_number}".encode())


def test_stop_leaves_no_proxy_threads(echo_server: EchoServer) -> None:
    """stop() joins the accept thread and every forwarding thread."""
    assert proxy_threads() == []
    proxy = TcpProxy(LOOPBACK, echo_server.port).start()
    idle = connect(proxy.port)
    assert_round_trip(proxy.port)
    assert proxy_threads()
    proxy.stop()
    idle.close()
    assert proxy_threads() == []
    assert_refused_fast(proxy.port)


def test_stop_is_idempotent_and_forbids_restore(echo_server: EchoServer) -> None:
    """Stopping twice is harmless; a stopped proxy cannot be restored."""
    proxy = TcpProxy(LOOPBACK, echo_server.port).start()
    proxy.stop()
    proxy.stop()
    with pytest.raises(RuntimeError):
        proxy.restore()


def test_rejects_non_loopback_target() -> None:
    """The proxy never forwards off the machine."""
    with pytest.raises(ValueError):
        TcpProxy("192.0.2.1", 5672)


def test_client_half_close_still_delivers_reply(proxy: TcpProxy) -> None:
    """A client that shuts down its write side still receives the echo, then EOF."""
    with connect(proxy.port) as client:
        client.sendall(b"last words")
        client.shutdown(socket.SHUT_WR)
        assert recv_exactly(client, 10) == b"last words"
        assert client.recv(1) == b""


def test_pika_connection_through_proxy_breaks_on_cut() -> None:
    """A real AMQP connection through the proxy works, then fails on the next operation after cut()."""
    ensure_services(["rabbitmq"])
    with TcpProxy(LOOPBACK, 5672) as rabbit_proxy:
        parameters = pika.ConnectionParameters(
            host=LOOPBACK,
            port=rabbit_proxy.port,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1,
            socket_timeout=IO_TIMEOUT_SECONDS,
            blocked_connection_timeout=IO_TIMEOUT_SECONDS,
        )
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            declared = channel.queue_declare(queue="", exclusive=True, auto_delete=True)
            assert declared.method.queue.startswith("amq.gen-")
            rabbit_proxy.cut()
            with pytest.raises(pika.exceptions.AMQPConnectionError):
                channel.queue_declare(queue="", exclusive=True, auto_delete=True)
        finally:
            if connection.is_open:
                connection.close()
