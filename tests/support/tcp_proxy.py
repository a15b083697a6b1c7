"""Threaded loopback TCP forwarder whose link can be cut and later restored on the same port."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import selectors
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

LOOPBACK = "127.0.0.1"
THREAD_NAME_PREFIX = "tcp-proxy"
_BUFFER_SIZE = 65536
_BACKLOG = 128
_ACCEPT_POLL_SECONDS = 0.05
_CONNECT_TIMEOUT_SECONDS = 5.0
_JOIN_TIMEOUT_SECONDS = 10.0
_REBIND_SECONDS = 5.0


def _require_loopback(host: str) -> None:
    """Refuse any target that is not a loopback address."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"TcpProxy only forwards to loopback addresses, not {host!r}")


def _tune(sock: socket.socket) -> None:
    """Make a connected socket blocking and disable Nagle so forwarding adds no delay."""
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _shutdown(sock: socket.socket | None, how: int = socket.SHUT_RDWR) -> None:
    """Shut a socket down, ignoring sockets that are already gone."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(how)


def _close(sock: socket.socket | None) -> None:
    """Close a socket if there is one."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _bind_listener(port: int) -> socket.socket:
    """Open a listening socket on the loopback port (0 lets the OS choose), retrying briefly."""
    deadline = time.monotonic() + _REBIND_SECONDS
    while True:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK, port))
            listener.listen(_BACKLOG)
            listener.setblocking(False)
            return listener
        except OSError as error:
            listener.close()
            if error.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class _Link:
    """One proxied client connection plus its upstream connection."""

    def __init__(self, client: socket.socket, target: tuple[str, int], on_done: Callable[[_Link], None]):
        """Remember the accepted client socket, the target and who to tell when finished."""
        self._client = client
        self._upstream: socket.socket | None = None
        self._target = target
        self._on_done = on_done
        self._lock = threading.Lock()
        self._aborted = False
        self.thread = threading.Thread(target=self._run, name=f"{THREAD_NAME_PREFIX}-link", daemon=True)

    def abort(self) -> None:
        """Tear both directions down at once; the link thread then closes the sockets."""
        with self._lock:
            self._aborted = True
            upstream = self._upstream
        _shutdown(self._client)
        _shutdown(upstream)

    def _run(self) -> None:
        """Connect upstream, forward both directions, then close everything."""
        try:
            if self._connect_upstream():
                self._forward_both_ways()
        finally:
            _close(self._client)
            _close(self._upstream)
            self._on_done(self)

    def _connect_upstream(self) -> bool:
        """Open the upstream connection unless the link was aborted meanwhile."""
        try:
            upstream = socket.create_connection(self._target, timeout=_CONNECT_TIMEOUT_SECONDS)
        except OSError:
            return False
        _tune(upstream)
        with self._lock:
            self._upstream = upstream
            aborted = self._aborted
        if aborted:
            _shutdown(upstream)
        return not aborted

    def _forward_both_ways(self) -> None:
        """Pump upstream->client in a helper thread and client->upstream here, then join."""
        assert self._upstream is not None
        back = threading.Thread(
            target=self._pump,
            args=(self._upstream, self._client),
            name=f"{THREAD_NAME_PREFIX}-pump",
            daemon=True,
        )
        back.start()
        self._pump(self._client, self._upstream)
        back.join()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes until end of stream (propagated as a half-close) or abort on any error."""
        try:
            while chunk := source.recv(_BUFFER_SIZE):
                sink.sendall(chunk)
        except OSError:
            self.abort()
            return
        _shutdown(sink, socket.SHUT_WR)


class TcpProxy:
    """Forward TCP connections from an OS-chosen loopback port to a loopback target, with fault control."""

    def __init__(self, target_host: str, target_port: int) -> None:
        """Prepare a proxy to target_host:target_port; call start() to begin listening."""
        _require_loopback(target_host)
        self.target: tuple[str, int] = (target_host, target_port)
        self.host = LOOPBACK
        self._port: int | None = None
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._accepting = threading.Event()
        self._stopped = False

    @property
    def port(self) -> int:
        """Return the loopback port clients should connect to (fixed for the proxy's lifetime)."""
        if self._port is None:
            raise RuntimeError("TcpProxy has not been started")
        return self._port

    @property
    def is_listening(self) -> bool:
        """Return True while the proxy accepts and forwards new connections."""
        return self._accepting.is_set()

    @property
    def connection_count(self) -> int:
        """Return the number of client connections currently being forwarded."""
        with self._lock:
            return len(self._links)

    def start(self) -> TcpProxy:
        """Listen on an ephemeral loopback port and begin forwarding."""
        if self._port is not None:
            raise RuntimeError("TcpProxy.start() may only be called once; use restore() after cut()")
        self._listen(0)
        return self

    def cut(self) -> None:
        """Drop every live connection and close the listener so new connects are refused."""
        self._close_listener()
        self._join_links()

    def restore(self) -> None:
        """Listen again on the same port and resume forwarding (no-op while already listening)."""
        if self._stopped:
            raise RuntimeError("TcpProxy was stopped; create a new one")
        if self._port is None:
            raise RuntimeError("TcpProxy has not been started")
        if not self.is_listening:
            self._listen(self._port)

    def stop(self) -> None:
        """Close the listener and every connection and join all proxy threads (idempotent)."""
        self._stopped = True
        self.cut()

    def __enter__(self) -> TcpProxy:
        """Start the proxy (if not yet started) and return it."""
        if self._port is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the proxy."""
        self.stop()

    def _listen(self, port: int) -> None:
        """Bind the listener and start the accept thread."""
        listener = _bind_listener(port)
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accepting.set()
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener,),
            name=f"{THREAD_NAME_PREFIX}-accept-{self._port}",
            daemon=True,
        )
        self._accept_thread.start()

    def _close_listener(self) -> None:
        """Stop accepting, abort live links, join the accept thread and close the listening socket."""
        with self._lock:
            self._accepting.clear()
            links = list(self._links)
        for link in links:
            link.abort()
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT_SECONDS)
            self._accept_thread = None
        _close(self._listener)
        self._listener = None

    def _join_links(self) -> None:
        """Wait for every link thread to finish closing its sockets."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.abort()
            link.thread.join(_JOIN_TIMEOUT_SECONDS)

    def _accept_loop(self, listener: socket.socket) -> None:
        """Accept clients until cut() or stop() clears the accepting flag."""
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            while self._accepting.is_set():
                if selector.select(timeout=_ACCEPT_POLL_SECONDS):
                    self._accept_one(listener)

    def _accept_one(self, listener: socket.socket) -> None:
        """Accept one client and hand it to a new link thread, or drop it if we stopped meanwhile."""
        try:
            client, _ = listener.accept()
        except OSError:
            return
        _tune(client)
        link = _Link(client, self.target, self._forget)
        with self._lock:
            if not self._accepting.is_set():
                _close(client)
                return
            self._links.add(link)
            link.thread.start()

    def _forget(self, link: _Link) -> None:
        """Drop a finished link from the live set."""
        with self._lock:
            self._links.discard(link)
