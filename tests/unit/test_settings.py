"""Settings read from the environment, and the configurations they refuse to start with."""

from __future__ import annotations

from types import ModuleType

import pytest

from config.settings import DEV_SECRET, ConfigurationError, Settings

STRONG_SECRET = "s" * 32


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A development environment with none of the variables these tests set."""
    for name in ("FINANCE_ENV", "JWT_SECRET_KEY", "DATABASE_URL", "RABBITMQ_URL", "CLOUDAMQP_URL",
                 "DRAMATIQ_MAX_BACKOFF_MS", "PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("secret", [None, DEV_SECRET, "too-short", "x" * 31])
def test_production_refuses_the_default_or_a_short_jwt_secret(env, secret):
    env.setenv("FINANCE_ENV", "production")
    if secret is not None:
        env.setenv("JWT_SECRET_KEY", secret)

    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY"):
        Settings()


def test_production_starts_with_a_long_enough_secret_and_encryption_keys(env):
    env.setenv("FINANCE_ENV", "production")
    env.setenv("JWT_SECRET_KEY", STRONG_SECRET)
    env.setenv("ENCRYPTION_KEYS", "k1")

    settings = Settings()

    assert settings.is_production
    assert settings.jwt_secret_key == STRONG_SECRET


def test_development_tolerates_the_default_secret(env):
    settings = Settings()

    assert not settings.is_production
    assert settings.jwt_secret_key == DEV_SECRET


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u:p@h:5433/db", "postgresql+psycopg://u:p@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_name_the_psycopg_driver(env, given, used):
    env.setenv("DATABASE_URL", given)

    assert Settings().database_url == used


def test_cloudamqp_url_is_used_when_rabbitmq_url_is_unset(env):
    env.setenv("CLOUDAMQP_URL", "amqps://u:p@cloud.example/vh")

    assert Settings().rabbitmq_url == "amqps://u:p@cloud.example/vh"


def test_rabbitmq_url_wins_over_cloudamqp_url(env):
    env.setenv("CLOUDAMQP_URL", "amqps://u:p@cloud.example/vh")
    env.setenv("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

    assert Settings().rabbitmq_url == "amqp://guest:guest@127.0.0.1:5672/%2F"


def test_a_max_backoff_past_twenty_minutes_is_refused(env):
    env.setenv("DRAMATIQ_MAX_BACKOFF_MS", str(20 * 60 * 1000 + 1))

    with pytest.raises(ConfigurationError, match="DRAMATIQ_MAX_BACKOFF_MS"):
        Settings()


def test_a_max_backoff_of_twenty_minutes_is_accepted(env):
    env.setenv("DRAMATIQ_MAX_BACKOFF_MS", str(20 * 60 * 1000))

    assert Settings().max_backoff_ms == 1_200_000


def test_port_defaults_to_8000_and_follows_the_environment(env):
    assert Settings().port == 8000
    env.setenv("PORT", "5001")
    assert Settings().port == 5001


def test_production_refuses_to_start_without_encryption_keys(env):
    env.setenv("FINANCE_ENV", "production")
    env.setenv("JWT_SECRET_KEY", STRONG_SECRET)
    env.delenv("ENCRYPTION_KEYS", raising=False)

    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        Settings()


def test_the_database_pool_follows_the_threads_unless_sized(monkeypatch):
    """Each process's PostgreSQL pool: max(5, WORKER_THREADS) and as many again by default, or as configured."""
    from config import wiring

    monkeypatch.setenv("WORKER_THREADS", "12")
    for name in ("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.database_pool_size, settings.database_max_overflow) == (0, None)
    _drop_engine(wiring)  # earlier tests' connections are closed, not left to the garbage collector
    monkeypatch.setattr(wiring, "get_settings", lambda: settings)
    try:
        assert (wiring.engine().pool.size(), wiring.engine().pool._max_overflow) == (12, 12)
        monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
        monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
        sized = Settings()
        monkeypatch.setattr(wiring, "get_settings", lambda: sized)
        _drop_engine(wiring)
        assert (wiring.engine().pool.size(), wiring.engine().pool._max_overflow) == (3, 0)
    finally:
        _drop_engine(wiring)


def test_the_web_pool_holds_a_connection_per_thread(monkeypatch):
    """The web's pool keeps one connection per gunicorn thread and one for the submission writer: with fewer, the
    connections beyond the pool are closed at every return and opened again by the next request."""
    import api
    from config import wiring

    monkeypatch.setenv("WEB_THREADS", "16")
    for name in ("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    monkeypatch.setattr(wiring, "get_settings", lambda: settings)
    monkeypatch.setattr(api, "get_settings", lambda: settings)
    monkeypatch.setattr(wiring, "_process", {})
    _drop_engine(wiring)
    try:
        api.create_app()
        assert wiring.engine().pool.size() == 17
        with wiring.engine().connect() as conn:
            assert conn.exec_driver_sql("SHOW application_name").scalar() == "finance-web"
    finally:
        _drop_engine(wiring)


def _drop_engine(wiring: ModuleType) -> None:
    """Close the process's engine's connections and forget it; the next use builds one from the settings."""
    wiring.engine().dispose()
    wiring.engine.cache_clear()


def test_a_negative_pool_size_refuses_to_start(monkeypatch):
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "-1")
    with pytest.raises(ConfigurationError, match="DATABASE_MAX_OVERFLOW"):
        Settings()
