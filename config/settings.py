"""Every setting comes from the environment; development defaults suit this project's machines."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

#: Secrets that must never run in production.
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class ConfigurationError(RuntimeError):
    """The environment describes a configuration that must not start."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _allow_private_webhooks() -> bool:
    default = "false" if _env("FINANCE_ENV") == "production" else "true"
    return _env("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default).strip().lower() in ("1", "true", "yes")


def _database_url() -> str:
    url = _env("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/finance")
    # Heroku and most PaaS hand out postgres:// URLs; SQLAlchemy wants the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _rabbitmq_url() -> str:
    return _env("RABBITMQ_URL") or _env("CLOUDAMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass(frozen=True)
class Settings:
    """The process configuration, read once."""

    env: str = field(default_factory=lambda: _env("FINANCE_ENV", "development"))
    port: int = field(default_factory=lambda: _int("PORT", 8000))
    database_url: str = field(default_factory=_database_url)
    rabbitmq_url: str = field(default_factory=_rabbitmq_url)
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    mongo_url: str = field(default_factory=lambda: _env("MONGO_URL"))
    audit_retention_days: int = field(default_factory=lambda: _int("AUDIT_RETENTION_DAYS", 0))
    audit_batch_size: int = field(default_factory=lambda: _int("AUDIT_BATCH_SIZE", 200))
    #: Most submitted transactions the categorization pool records in one database transaction (1: one each).
    record_batch_size: int = field(default_factory=lambda: _int("RECORD_BATCH_SIZE", 100))
    #: Milliseconds the categorization pool waits after a submitted transaction for others to record with it (0: none).
    record_linger_ms: int = field(default_factory=lambda: _int("RECORD_LINGER_MS", 100))
    jwt_secret_key: str = field(default_factory=lambda: _env("JWT_SECRET_KEY", DEV_SECRET))
    access_token_minutes: int = field(default_factory=lambda: _int("ACCESS_TOKEN_MINUTES", 15))
    refresh_token_days: int = field(default_factory=lambda: _int("REFRESH_TOKEN_DAYS", 30))
    sendgrid_api_key: str = field(default_factory=lambda: _env("SENDGRID_API_KEY"))
    sendgrid_host: str = field(default_factory=lambda: _env("SENDGRID_HOST", "https://api.sendgrid.com"))
    twilio_account_sid: str = field(default_factory=lambda: _env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: str = field(default_factory=lambda: _env("TWILIO_AUTH_TOKEN"))
    twilio_from_number: str = field(default_factory=lambda: _env("TWILIO_FROM_NUMBER"))
    twilio_api_base: str = field(default_factory=lambda: _env("TWILIO_API_BASE", "https://api.twilio.com"))
    notify_from_email: str = field(default_factory=lambda: _env("NOTIFY_FROM_EMAIL", "alerts@finance.example"))
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", "http://127.0.0.1:8000"))
    notify_timeout_seconds: int = field(default_factory=lambda: _int("NOTIFY_TIMEOUT_SECONDS", 10))
    notify_min_backoff_ms: int = field(default_factory=lambda: _int("NOTIFY_MIN_BACKOFF_MS", 1_000))
    notify_max_backoff_ms: int = field(default_factory=lambda: _int("NOTIFY_MAX_BACKOFF_MS", 300_000))
    notify_max_attempts: int = field(default_factory=lambda: _int("NOTIFY_MAX_ATTEMPTS", 40))
    webhook_max_attempts: int = field(default_factory=lambda: _int("WEBHOOK_MAX_ATTEMPTS", 8))
    #: Webhooks to loopback, private or link-local addresses (development and tests); refused in production (SSRF).
    webhook_allow_private_addresses: bool = field(default_factory=_allow_private_webhooks)
    notify_sms_max_age_seconds: int = field(default_factory=lambda: _int("NOTIFY_SMS_MAX_AGE_SECONDS", 900))
    notify_sweep_seconds: int = field(default_factory=lambda: _int("NOTIFY_SWEEP_SECONDS", 30))
    notify_sending_lease_seconds: int = field(default_factory=lambda: _int("NOTIFY_SENDING_LEASE_SECONDS", 300))
    fx_provider_url: str = field(default_factory=lambda: _env("FX_PROVIDER_URL"))
    fx_timeout_seconds: int = field(default_factory=lambda: _int("FX_TIMEOUT_SECONDS", 5))
    fx_breaker_fail_max: int = field(default_factory=lambda: _int("FX_BREAKER_FAIL_MAX", 5))
    fx_breaker_reset_seconds: int = field(default_factory=lambda: _int("FX_BREAKER_RESET_SECONDS", 30))
    fx_sweep_seconds: int = field(default_factory=lambda: _int("FX_SWEEP_SECONDS", 300))
    worker_threads: int = field(default_factory=lambda: _int("WORKER_THREADS", 8))
    #: The web's gunicorn threads per process, as the Procfile passes them (--threads ${WEB_THREADS:-32}).
    web_threads: int = field(default_factory=lambda: _int("WEB_THREADS", 32))
    #: Connections each process keeps to PostgreSQL (0: max(5, its threads): WEB_THREADS + 1 for the web, else
    #: WORKER_THREADS) and may open beyond them when busy (empty: as many again); every process of every type
    #: holds its own pool, so size them together under the server's max_connections.
    database_pool_size: int = field(default_factory=lambda: _int("DATABASE_POOL_SIZE", 0))
    database_max_overflow: int | None = field(
        default_factory=lambda: None if not _env("DATABASE_MAX_OVERFLOW") else _int("DATABASE_MAX_OVERFLOW", 0))
    worker_prefetch: int = field(default_factory=lambda: _int("WORKER_PREFETCH", 2))
    shutdown_timeout_ms: int = field(default_factory=lambda: _int("SHUTDOWN_TIMEOUT_MS", 25_000))
    max_retries: int = field(default_factory=lambda: _int("DRAMATIQ_MAX_RETRIES", 20))
    min_backoff_ms: int = field(default_factory=lambda: _int("DRAMATIQ_MIN_BACKOFF_MS", 1_000))
    max_backoff_ms: int = field(default_factory=lambda: _int("DRAMATIQ_MAX_BACKOFF_MS", 600_000))
    broker_timeout_seconds: int = field(default_factory=lambda: _int("BROKER_TIMEOUT_SECONDS", 3))
    outbox_relay_seconds: int = field(default_factory=lambda: _int("OUTBOX_RELAY_SECONDS", 5))
    #: Days a published event stays in the outbox (0: forever); each pool process purges once an hour.
    outbox_retention_days: int = field(default_factory=lambda: _int("OUTBOX_RETENTION_DAYS", 7))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))
    login_limit_per_account: str = field(default_factory=lambda: _env("LOGIN_LIMIT_PER_ACCOUNT", "10/15minutes"))
    login_limit_per_address: str = field(default_factory=lambda: _env("LOGIN_LIMIT_PER_ADDRESS", "50/15minutes"))
    api_limit_per_token: str = field(default_factory=lambda: _env("API_LIMIT_PER_TOKEN", "1200/minute"))
    encryption_keys: str = field(default_factory=lambda: _env("ENCRYPTION_KEYS"))
    cors_origins: str = field(default_factory=lambda: _env("CORS_ORIGINS"))
    proxy_count: int = field(default_factory=lambda: _int("PROXY_COUNT", 0))
    max_request_bytes: int = field(default_factory=lambda: _int("MAX_REQUEST_BYTES", 1_048_576))
    max_import_bytes: int = field(default_factory=lambda: _int("MAX_IMPORT_BYTES", 20 * 1_048_576))

    def __post_init__(self) -> None:
        if self.env == "production":
            self._refuse_development_defaults()
        if self.database_pool_size < 0 or (self.database_max_overflow or 0) < 0:
            raise ConfigurationError("DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW must not be negative")
        if self.max_backoff_ms > 20 * 60 * 1000:
            raise ConfigurationError("DRAMATIQ_MAX_BACKOFF_MS must stay under RabbitMQ's 30-minute consumer timeout")
        self._check_fx()
        self._check_notify()

    def _check_notify(self) -> None:
        if self.notify_max_backoff_ms > 20 * 60 * 1000 or self.notify_min_backoff_ms < 1:
            raise ConfigurationError("NOTIFY_MIN_BACKOFF_MS must be >= 1 and NOTIFY_MAX_BACKOFF_MS under 20 minutes")
        if min(self.notify_max_attempts, self.webhook_max_attempts, self.notify_timeout_seconds,
               self.notify_sweep_seconds, self.notify_sending_lease_seconds) < 1:
            raise ConfigurationError("NOTIFY_* and WEBHOOK_MAX_ATTEMPTS settings must be >= 1")

    def _check_fx(self) -> None:
        if self.fx_timeout_seconds < 1:
            raise ConfigurationError("FX_TIMEOUT_SECONDS must be at least 1")
        if self.fx_breaker_fail_max < 1 or self.fx_breaker_reset_seconds < 1 or self.fx_sweep_seconds < 1:
            raise ConfigurationError("FX_BREAKER_FAIL_MAX, FX_BREAKER_RESET_SECONDS and FX_SWEEP_SECONDS must be >= 1")
        if self.fx_provider_url and not self.fx_provider_url.startswith(("http://", "https://")):
            raise ConfigurationError("FX_PROVIDER_URL must be an http:// or https:// URL")

    def _refuse_development_defaults(self) -> None:
        if self.jwt_secret_key == DEV_SECRET or len(self.jwt_secret_key) < 32:
            raise ConfigurationError("JWT_SECRET_KEY must be set to 32+ random characters in production")
        if not self.encryption_keys:
            raise ConfigurationError("ENCRYPTION_KEYS must hold one or more Fernet keys in production")

    @property
    def is_production(self) -> bool:
        """True when running with FINANCE_ENV=production."""
        return self.env == "production"


@cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()
