"""The thin HTTP API: validates, authorizes, answers reads, and sends writes as commands."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from api import (
    accounts,
    admin,
    audit,
    auth,
    budgets,
    categories,
    errors,
    fx,
    goals,
    groups,
    headers,
    households,
    imports,
    insights,
    notifications,
    observability,
    ops,
    preferences,
    reports,
    rules,
    security,
    tokens,
    users,
    webhooks,
    ws,
)
from api import transactions as transactions_api
from config import wiring
from config.logs import configure_logging
from config.settings import get_settings

#: One blueprint per resource.
RESOURCES = (auth, users, households, tokens, accounts, categories, rules, transactions_api, imports, budgets,
             goals, groups, fx, notifications, preferences, webhooks, reports, insights, audit, admin)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application."""
    settings = get_settings()
    configure_logging(settings.log_level, process_type="web")
    wiring.identify("web", settings.web_threads + 1)  # every request thread, and the submissions' writer
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Personal finance", API_VERSION="v1", OPENAPI_VERSION="3.0.3", OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json", OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        JSON_SORT_KEYS=False,
    )
    app.config.update(config or {})
    if settings.proxy_count:
        # Behind N trusted proxies (Heroku's router: 1) the client address is in X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count)
    security.install(app, settings)
    headers.install(app, settings)
    api = Api(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}, "security": [{"bearer": []}]})
    for resource in RESOURCES:
        api.register_blueprint(resource.blp)
    app.register_blueprint(ops.blp)
    ws.install(app)
    observability.install(app)
    errors.register_error_handlers(app)
    return app
