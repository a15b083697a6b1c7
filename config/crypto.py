"""The encryption keys of this process: ENCRYPTION_KEYS, or a development key derived from the JWT secret."""

from __future__ import annotations

import base64
import hashlib

from config.settings import ConfigurationError, Settings, get_settings
from models.crypto import configure_keys


def development_key(secret: str) -> str:
    """A Fernet key derived deterministically from a secret (development and tests only)."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode("ascii")


def keys_from_settings(settings: Settings) -> str:
    """ENCRYPTION_KEYS, or outside production when it is empty, the development key of the JWT secret."""
    if settings.encryption_keys.strip():
        return settings.encryption_keys
    if settings.is_production:
        raise ConfigurationError("ENCRYPTION_KEYS must hold one or more Fernet keys in production")
    return development_key(settings.jwt_secret_key)


def install_keys() -> None:
    """Configure this process's keyring (models.crypto) from its settings."""
    configure_keys(keys_from_settings(get_settings()))
