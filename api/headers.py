"""Browser-facing hardening: security headers on every response, CORS for configured origins, a body limit."""

from __future__ import annotations

import re

from flask import Flask, Response, request
from flask_cors import CORS

from config.settings import ConfigurationError, Settings

#: The Swagger UI page (flask-smorest), which loads its scripts and styles from jsDelivr.
DOCS_PATH = "/docs"
#: Only the JSON API answers cross-origin requests.
API_PREFIX = "/api/"

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "img-src 'self' data: https://cdn.jsdelivr.net; "
    "connect-src 'self'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"

#: Headers on every response, whatever the path.
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID", "X-Household-ID"]
EXPOSED_HEADERS = ["Location", "X-Request-ID", "Retry-After"]
#: Seconds a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = 600

#: An origin as browsers send it: scheme, host, optional port; no path, no wildcard.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


def cors_origins(raw: str) -> list[str]:
    """The origins of CORS_ORIGINS (comma-separated); each must be an exact origin, never a pattern."""
    origins = [origin.strip() for origin in raw.split(",") if origin.strip()]
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigurationError(f"CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com")
    return origins


def security_headers(response: Response, *, secure: bool) -> Response:
    """Add the security headers this request's response lacks."""
    for name, value in ALWAYS.items():
        response.headers.setdefault(name, value)
    path = request.path
    response.headers.setdefault("Content-Security-Policy", DOCS_CSP if path == DOCS_PATH else STRICT_CSP)
    if path.startswith(API_PREFIX):
        response.headers.setdefault("Cache-Control", "no-store")
    if secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def install_cors(app: Flask, origins: list[str]) -> None:
    """Let exactly these origins call the API from a browser (bearer tokens, no cookies)."""
    if not origins:
        return
    CORS(app, resources={rf"^{re.escape(API_PREFIX)}.*": {}}, origins=origins, allow_headers=ALLOWED_HEADERS,
         expose_headers=EXPOSED_HEADERS, supports_credentials=False, max_age=PREFLIGHT_MAX_AGE)


def install(app: Flask, settings: Settings) -> None:
    """Security headers on every response, CORS limited to CORS_ORIGINS, and MAX_REQUEST_BYTES as the body limit."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    install_cors(app, cors_origins(settings.cors_origins))

    @app.after_request
    def _harden(response: Response) -> Response:
        return security_headers(response, secure=request.is_secure or settings.is_production)
