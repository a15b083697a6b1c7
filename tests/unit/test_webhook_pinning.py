"""A webhook delivery connects to the address that was checked, never to a second lookup of the name (DNS
rebinding), and still speaks to the name: Host header, TLS server name and certificate."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services import webhooks
from services.notify_channels import Outgoing, WebhookSender
from services.pinned_http import pinned_url, post_pinned
from tests.support.stack import free_port

NAME = "hooks.example"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 204 and remembers each request's Host header on its server."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hosts.append(self.headers["Host"])  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _serve(address: str, port: int, tls: ssl.SSLContext | None = None) -> http.server.HTTPServer:
    server = http.server.HTTPServer((address, port), _Recorder)
    server.hosts = []  # type: ignore[attr-defined]
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_hosts() -> Iterator[tuple[int, http.server.HTTPServer, http.server.HTTPServer]]:
    """The same port on 127.0.0.1 (the address checked) and 127.0.0.2 (where a second lookup would lead)."""
    port = free_port()
    checked, elsewhere = _serve("127.0.0.1", port), _serve("127.0.0.2", port)
    yield port, checked, elsewhere
    for server in (checked, elsewhere):
        server.shutdown()
        server.server_close()


def _as_if_public(monkeypatch: pytest.MonkeyPatch, answers: list[list[str]]) -> None:
    """The name resolves to each of `answers` in turn; 127.0.0.1 counts as public, nothing else does."""
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: answers.pop(0) if host == NAME else [])
    monkeypatch.setattr(webhooks, "is_public_address", lambda address: address == "127.0.0.1")


def _message(port: int) -> Outgoing:
    return Outgoing("n1", "webhook", f"http://{NAME}:{port}/hook", "", "", document={"type": "X"}, secret="s")


def test_a_delivery_goes_to_the_checked_address_with_the_name_as_host(monkeypatch, two_hosts):
    port, checked, elsewhere = two_hosts
    _as_if_public(monkeypatch, [["127.0.0.1"], ["127.0.0.2"]])  # a rebinding name: public first, then not
    outcome = WebhookSender(timeout=5, allow_private=False).send(_message(port))
    assert outcome.result == "sent", outcome
    assert checked.hosts == [f"{NAME}:{port}"]
    assert elsewhere.hosts == []


def test_a_name_with_any_non_public_address_is_refused_without_a_request(monkeypatch, two_hosts):
    port, checked, elsewhere = two_hosts
    _as_if_public(monkeypatch, [["127.0.0.1", "127.0.0.2"]])
    outcome = WebhookSender(timeout=5, allow_private=False).send(_message(port))
    assert outcome.result == "failed" and "non-public address (127.0.0.2)" in outcome.detail
    assert checked.hosts == elsewhere.hosts == []


@pytest.mark.parametrize(("url", "address", "pinned"), [
    ("https://hooks.example/a?b=1", "93.184.216.34", "https://93.184.216.34/a?b=1"),
    ("http://hooks.example:8080/a", "2606:4700::1", "http://[2606:4700::1]:8080/a"),
])
def test_the_pinned_url_keeps_scheme_port_path_and_query(url, address, pinned):
    assert pinned_url(url, address) == pinned


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for NAME only (not for 127.0.0.1), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_over_tls_the_certificate_is_checked_against_the_name_not_the_address(tmp_path):
    cert, key = _certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    port = free_port()
    server = _serve("127.0.0.1", port, tls)
    try:
        response = post_pinned(f"https://{NAME}:{port}/hook", "127.0.0.1", headers={}, data=b"{}", timeout=5,
                               verify=str(cert))
        assert response.status_code == 204
        assert server.hosts == [f"{NAME}:{port}"]
        with pytest.raises(Exception, match="(?i)certificate|hostname"):  # the same server, asked as another name
            post_pinned(f"https://other.example:{port}/hook", "127.0.0.1", headers={}, data=b"{}", timeout=5,
                        verify=str(cert))
    finally:
        server.shutdown()
        server.server_close()
