"""Encryption at rest: a process-wide Fernet keyring and the EncryptedText column type."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Column, MetaData, Text, select, tuple_, type_coerce, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

#: (all keys, primary key) once configure_keys has run.
_keys: tuple[MultiFernet, Fernet] | None = None


class DecryptionError(ValueError):
    """A stored value does not decrypt under any configured key (wrong keys, or a tampered value)."""


def _fernet(key: str, position: int) -> Fernet:
    """One Fernet from one key, naming its position (never the key) when it is malformed."""
    try:
        return Fernet(key)
    except ValueError as error:
        raise ValueError(f"encryption key #{position} is not a Fernet key (32 url-safe base64 bytes)") from error


def configure_keys(keys: str) -> None:
    """Use these comma-separated Fernet keys from now on; the first encrypts, all decrypt."""
    global _keys
    fernets = [_fernet(key, n) for n, key in enumerate((k.strip() for k in keys.split(",")), 1) if key]
    if not fernets:
        raise ValueError("no encryption key given")
    _keys = (MultiFernet(fernets), fernets[0])


def _configured() -> tuple[MultiFernet, Fernet]:
    if _keys is None:
        raise RuntimeError("encryption keys not configured")
    return _keys


def keyring() -> MultiFernet:
    """The configured keyring; configure_keys must have run in this process."""
    return _configured()[0]


def encrypt(text: str) -> str:
    """A Fernet token of text under the primary key."""
    return keyring().encrypt(text.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The text of a token encrypted under any configured key."""
    try:
        return keyring().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError) as error:
        raise DecryptionError("cannot decrypt a stored value: no configured encryption key opens it") from error


def rotate(token: str) -> str:
    """The token re-encrypted under the primary key (same text, same timestamp)."""
    try:
        return keyring().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError) as error:
        raise DecryptionError("cannot rotate a stored value: no configured encryption key opens it") from error


def is_current(token: str) -> bool:
    """True when the token already opens under the primary key (rotation would change nothing)."""
    try:
        _configured()[1].decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token: encrypted on write, decrypted on read; None stays None.

    Tokens are randomized, so the database cannot compare, index or filter such a column by value.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Encrypt on the way into the database."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText stores str, not {type(value).__name__}")
        return encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Decrypt on the way out of the database."""
        return None if value is None else decrypt(value)


def encrypted_columns(metadata: MetaData) -> list[Column[Any]]:
    """Every EncryptedText column of these tables, in dependency order."""
    return [column for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, EncryptedText)]


def rotate_column(engine: Engine, column: Column[Any], batch_size: int = 500) -> tuple[int, int]:
    """Re-encrypt a column's values under the primary key, one transaction per batch: (rotated, already current).

    Rows are walked in primary-key order; a value changed by someone else meanwhile is left as they wrote it.
    """
    table = column.table
    key = list(table.primary_key.columns)
    if not key:
        raise ValueError(f"{table.name} has no primary key; cannot rotate {column.name}")
    token = type_coerce(column, Text)
    rotated = current = 0
    last: tuple[Any, ...] | None = None
    while True:
        query = select(*key, token).where(column.is_not(None)).order_by(*key).limit(batch_size)
        if last is not None:
            query = query.where(tuple_(*key) > last)
        with engine.begin() as conn:
            rows = conn.execute(query).all()
            for row in rows:
                *ids, old = row
                if is_current(old):
                    current += 1
                    continue
                try:
                    new = rotate(old)
                except DecryptionError as error:
                    raise DecryptionError(f"{table.name}.{column.name} of {tuple(ids)}: {error}") from error
                match = [part == value for part, value in zip(key, ids, strict=True)]
                change = update(table).where(*match, token == old).values({column.name: type_coerce(new, Text)})
                rotated += conn.execute(change).rowcount
        if len(rows) < batch_size:
            return rotated, current
        last = tuple(rows[-1][: len(key)])
