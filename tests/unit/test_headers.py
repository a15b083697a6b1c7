"""Security headers, CORS and the request body limit, on a tiny app with api.headers installed."""

from __future__ import annotations

import warnings

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from config.settings import ConfigurationError, Settings

with warnings.catch_warnings():
    # api.errors still imports dramatiq's old name ConnectionError (now BrokerConnectionError).
    warnings.filterwarnings("ignore", "The class 'ConnectionError' has been renamed", DeprecationWarning)
    from api import errors, headers

ALLOWED = "https://app.example.com"
LIMIT = 64


def _app(settings: Settings) -> Flask:
    app = Flask(__name__)
    headers.install(app, settings)
    errors.register_error_handlers(app)

    @app.get("/api/v1/things")
    def things() -> dict:
        return {"things": []}

    @app.post("/api/v1/things")
    def add_thing() -> tuple[dict, int]:
        return {"got": request.get_json()}, 201

    @app.get("/docs")
    def docs() -> str:
        return "<html>swagger</html>"

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A development environment allowing one origin and small bodies."""
    monkeypatch.setenv("FINANCE_ENV", "development")
    monkeypatch.setenv("CORS_ORIGINS", f"{ALLOWED}, http://localhost:5173")
    monkeypatch.setenv("MAX_REQUEST_BYTES", str(LIMIT))
    return monkeypatch


@pytest.fixture
def client(env: pytest.MonkeyPatch) -> FlaskClient:
    return _app(Settings()).test_client()


@pytest.mark.parametrize("path", ["/api/v1/things", "/health", "/docs", "/missing"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/api/v1/things", "/health", "/missing"])
def test_the_strict_csp_everywhere_but_the_docs(client, path):
    assert client.get(path).headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_docs_page_may_load_swagger_ui_from_jsdelivr_only(client):
    directives = dict(
        part.strip().split(" ", 1) for part in client.get("/docs").headers["Content-Security-Policy"].split(";")
    )

    assert directives == {
        "default-src": "'none'",
        "script-src": "'self' https://cdn.jsdelivr.net 'unsafe-inline'",
        "style-src": "'self' https://cdn.jsdelivr.net 'unsafe-inline'",
        "img-src": "'self' data: https://cdn.jsdelivr.net",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
    }


def test_api_responses_are_not_stored_by_caches(client):
    assert client.get("/api/v1/things").headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client.get("/health").headers


def test_hsts_on_secure_requests_only_outside_production(client):
    hsts = "max-age=31536000; includeSubDomains"

    assert "Strict-Transport-Security" not in client.get("/health").headers
    assert client.get("/health", base_url="https://localhost").headers["Strict-Transport-Security"] == hsts


def test_hsts_always_in_production(env):
    env.setenv("FINANCE_ENV", "production")
    env.setenv("JWT_SECRET_KEY", "s" * 32)
    env.setenv("ENCRYPTION_KEYS", "k1")

    response = _app(Settings()).test_client().get("/health")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_cors_answers_a_configured_origin(client):
    response = client.get("/api/v1/things", headers={"Origin": ALLOWED})

    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in response.headers.get("Vary", "")
    assert set(response.headers["Access-Control-Expose-Headers"].split(", ")) == {
        "Location", "X-Request-ID", "Retry-After"}
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://app.example.com.evil.com",
                                    "http://app.example.com", "null"])
def test_cors_ignores_other_origins(client, origin):
    response = client.get("/api/v1/things", headers={"Origin": origin})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_covers_the_api_only(client):
    assert "Access-Control-Allow-Origin" not in client.get("/health", headers={"Origin": ALLOWED}).headers


def test_preflight_allows_the_api_headers(client):
    response = client.options("/api/v1/things", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key, X-Household-ID, X-Request-ID",
    })

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type", "idempotency-key", "x-household-id", "x-request-id"}
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_preflight_from_another_origin_is_not_allowed(client):
    response = client.options("/api/v1/things", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_at_all_without_configured_origins(env):
    env.setenv("CORS_ORIGINS", "")
    client = _app(Settings()).test_client()

    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/things", headers={"Origin": ALLOWED}).headers
    preflight = client.options("/api/v1/things", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.mark.parametrize("origins", ["*", "https://*.example.com", "https://app.example.com/", "app.example.com"])
def test_origins_must_be_exact(env, origins):
    env.setenv("CORS_ORIGINS", origins)

    with pytest.raises(ConfigurationError, match="CORS_ORIGINS"):
        _app(Settings())


def test_a_body_within_the_limit_is_accepted(client):
    response = client.post("/api/v1/things", json={"name": "x"})

    assert response.status_code == 201


def test_an_oversized_body_answers_413_in_the_error_shape(client):
    response = client.post("/api/v1/things", json={"name": "x" * LIMIT})

    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and body["status"] == "Request Entity Too Large"
    assert body["errors"] == {} and body["message"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
