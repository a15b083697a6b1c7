"""Encryption at rest: the keyring, EncryptedText, key rotation and the development key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select, text

from config.crypto import development_key, keys_from_settings
from config.settings import DEV_SECRET, Settings
from models import crypto
from models.crypto import DecryptionError, EncryptedText

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without keys and leaves the process's keyring as it found it."""
    monkeypatch.setattr(crypto, "_keys", None)


def test_round_trip():
    crypto.configure_keys(KEY_A)

    assert crypto.decrypt(crypto.encrypt("+44 7700 900123")) == "+44 7700 900123"
    assert crypto.decrypt(crypto.encrypt("")) == ""
    assert crypto.decrypt(crypto.encrypt("zürich ✓")) == "zürich ✓"


def test_ciphertext_neither_equals_nor_contains_the_plaintext():
    crypto.configure_keys(KEY_A)

    token = crypto.encrypt("+44 7700 900123")

    assert token != "+44 7700 900123"
    assert "7700" not in token
    assert crypto.encrypt("+44 7700 900123") != token  # randomized: equal texts give different tokens


def test_rotation_moves_a_value_to_the_new_primary_key():
    crypto.configure_keys(KEY_A)
    old = crypto.encrypt("secret")
    crypto.configure_keys(f"{KEY_B},{KEY_A}")
    assert not crypto.is_current(old)

    new = crypto.rotate(old)

    assert crypto.is_current(new)
    crypto.configure_keys(KEY_B)
    assert crypto.decrypt(new) == "secret"
    with pytest.raises(DecryptionError):
        crypto.decrypt(old)


def test_a_wrong_key_fails_clearly():
    crypto.configure_keys(KEY_A)
    token = crypto.encrypt("secret")
    crypto.configure_keys(KEY_B)

    with pytest.raises(DecryptionError, match="no configured encryption key opens it"):
        crypto.decrypt(token)
    with pytest.raises(DecryptionError):
        crypto.decrypt("not a token")


def test_unconfigured_keys_fail_clearly():
    with pytest.raises(RuntimeError, match="encryption keys not configured"):
        crypto.encrypt("secret")


@pytest.mark.parametrize("keys", ["", " , ", "not-a-key", f"{KEY_A},short"])
def test_malformed_keys_are_refused_without_echoing_them(keys):
    with pytest.raises(ValueError) as refused:
        crypto.configure_keys(keys)

    assert KEY_A not in str(refused.value)


def test_whitespace_around_keys_is_ignored():
    crypto.configure_keys(f" {KEY_B} , {KEY_A} ")

    assert crypto.is_current(crypto.encrypt("x"))


def test_the_column_type_encrypts_in_and_decrypts_out_and_keeps_none():
    crypto.configure_keys(KEY_A)
    kind, dialect = EncryptedText(), create_engine("sqlite://").dialect

    stored = kind.process_bind_param("secret", dialect)

    assert stored != "secret" and crypto.decrypt(stored) == "secret"
    assert kind.process_result_value(stored, dialect) == "secret"
    assert kind.process_bind_param(None, dialect) is None
    assert kind.process_result_value(None, dialect) is None
    with pytest.raises(TypeError):
        kind.process_bind_param(123, dialect)


def _secrets_table() -> tuple[MetaData, Table]:
    """A table with a composite primary key, so rotation's keyset paging compares tuples."""
    metadata = MetaData()
    table = Table("secrets", metadata, Column("tenant", String(8), primary_key=True),
                  Column("id", Integer, primary_key=True), Column("plain", String(20)),
                  Column("value", EncryptedText()))
    return metadata, table


def test_rotate_column_reencrypts_every_value_in_batches():
    metadata, table = _secrets_table()
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    crypto.configure_keys(KEY_A)
    rows = [{"tenant": tenant, "id": n, "plain": "p", "value": None if n == 3 else f"{tenant}-{n}"}
            for tenant in ("a", "b") for n in range(1, 5)]
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    crypto.configure_keys(f"{KEY_B},{KEY_A}")

    assert crypto.encrypted_columns(metadata) == [table.c.value]
    assert crypto.rotate_column(engine, table.c.value, batch_size=2) == (6, 0)
    assert crypto.rotate_column(engine, table.c.value, batch_size=2) == (0, 6)

    crypto.configure_keys(KEY_B)
    with engine.connect() as conn:
        read = dict(conn.execute(select(table.c.tenant + "/" + table.c.id.cast(String), table.c.value)).all())
        raw = conn.execute(text("SELECT value FROM secrets WHERE value IS NOT NULL")).scalars().all()
    assert read == {f"{r['tenant']}/{r['id']}": r["value"] for r in rows}
    assert all(crypto.is_current(token) for token in raw)


def test_rotate_column_names_the_row_it_cannot_open():
    metadata, table = _secrets_table()
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    crypto.configure_keys(KEY_A)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"tenant": "a", "id": 1, "value": "x"}])
    crypto.configure_keys(KEY_B)

    with pytest.raises(DecryptionError, match=r"secrets\.value of \('a', 1\)"):
        crypto.rotate_column(engine, table.c.value)


def test_the_rotate_keys_command_runs_on_the_database():
    from config.cli import cli

    result = CliRunner().invoke(cli, ["rotate-keys"])

    assert result.exit_code == 0, result.output
    assert "value(s)" in result.output


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A development environment without ENCRYPTION_KEYS."""
    monkeypatch.setenv("FINANCE_ENV", "development")
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    return monkeypatch


def test_the_development_key_is_a_deterministic_fernet_key_per_secret(env):
    derived = keys_from_settings(Settings())

    assert derived == development_key(DEV_SECRET) == keys_from_settings(Settings())
    env.setenv("JWT_SECRET_KEY", "another-secret")
    assert keys_from_settings(Settings()) != derived
    crypto.configure_keys(derived)
    assert crypto.decrypt(crypto.encrypt("x")) == "x"


def test_encryption_keys_win_over_the_development_key(env):
    env.setenv("ENCRYPTION_KEYS", f"{KEY_B},{KEY_A}")

    assert keys_from_settings(Settings()) == f"{KEY_B},{KEY_A}"


def test_production_uses_encryption_keys(env):
    env.setenv("FINANCE_ENV", "production")
    env.setenv("JWT_SECRET_KEY", "s" * 32)
    env.setenv("ENCRYPTION_KEYS", KEY_A)

    assert keys_from_settings(Settings()) == KEY_A
