"""Redaction: every class of secret leaves a text as ``***``, and ordinary text is left alone."""

from __future__ import annotations

import secrets
from pathlib import Path

from shared.api_keys import KEY_PREFIX
from shared.redaction import REDACTED, Redactor, redacted_settings, secret_values
from shared.settings import Settings

DB_PASSWORD = "pg-Pa55word"
BROKER_PASSWORD = "r3dis-pw"
ACCESS_KEY = "AKIAEXAMPLE0123456789"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def configured() -> Settings:
    return Settings(
        data_dir=Path("/tmp/gt"),
        database_url=f"postgresql+psycopg://gentrain:{DB_PASSWORD}@db.example:5432/gentrain",
        broker_url=f"redis://:{BROKER_PASSWORD}@redis.example:6379/0",
        s3_bucket="bucket",
        s3_endpoint_url="http://minio.example:9000",
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )


def test_each_secret_of_the_settings_is_redacted() -> None:
    settings = configured()
    redact = Redactor.for_settings(settings, environ={})
    text = (
        f"connecting to {settings.database_url} and {settings.broker_url}\n"
        f"aws_access_key_id={ACCESS_KEY} aws_secret_access_key={SECRET_KEY}\n"
        f"the password alone: {DB_PASSWORD}; the broker's: {BROKER_PASSWORD}\n"
    )
    cleaned = redact(text)
    for secret in (DB_PASSWORD, BROKER_PASSWORD, ACCESS_KEY, SECRET_KEY):
        assert secret not in cleaned
    assert "postgresql+psycopg://gentrain:***@db.example:5432/gentrain" in cleaned
    assert "redis://:***@redis.example:6379/0" in cleaned


def test_api_keys_of_the_service_shape_are_redacted_unknown_or_not() -> None:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    cleaned = Redactor()(f"Authorization: Bearer {key}\nX-API-Key: {key}\nkey={key},")
    assert key not in cleaned and key[3:20] not in cleaned
    assert cleaned == f"Authorization: Bearer {REDACTED}\nX-API-Key: {REDACTED}\nkey={REDACTED},"


def test_gentrain_variables_named_as_secrets_are_redacted() -> None:
    environ = {
        "GENTRAIN_API_KEY": "opaque-value-of-a-key",
        "GENTRAIN_SOME_TOKEN": "tok",
        "GENTRAIN_ADMIN_PASSWORD": "hunter2hunter2",
        "GENTRAIN_API_KEY_CACHE_SECONDS": "10",  # a setting (a number), not a secret
        "PATH": "/usr/bin",
    }
    values = secret_values(Settings(data_dir=Path("/tmp/gt")), environ)
    assert {"opaque-value-of-a-key", "tok", "hunter2hunter2"} <= set(values)
    assert "10" not in values and "/usr/bin" not in values
    redact = Redactor(values)
    assert redact("token tok; key opaque-value-of-a-key") == f"token {REDACTED}; key {REDACTED}"


def test_urls_with_passwords_anywhere_are_redacted_and_plain_urls_kept() -> None:
    redact = Redactor()
    assert redact("amqp://guest:guest@rabbit:5672//") == f"amqp://guest:{REDACTED}@rabbit:5672//"
    plain = "GET http://127.0.0.1:8000/v1/jobs and s3://bucket/key and user@example.com"
    assert redact(plain) == plain


def test_short_secrets_go_as_whole_words_only() -> None:
    # moto's S3 takes any credentials; tests use "test": metric names must survive it.
    redact = Redactor(["test"])
    assert redact("test_loss y_test s3_secret_access_key=test 'test'") == (
        f"test_loss y_test s3_secret_access_key={REDACTED} '{REDACTED}'"
    )


def test_the_settings_dump_masks_secrets() -> None:
    settings = configured()
    environ = {"GENTRAIN_API_KEY": KEY_PREFIX + "x" * 43, "GENTRAIN_ROLE": "worker"}
    dump = "\n".join(redacted_settings(settings, environ))
    for secret in (DB_PASSWORD, BROKER_PASSWORD, ACCESS_KEY, SECRET_KEY):
        assert secret not in dump
    assert environ["GENTRAIN_API_KEY"] not in dump
    assert f"s3_secret_access_key={REDACTED}" in dump
    assert f"s3_access_key_id={REDACTED}" in dump
    assert f"GENTRAIN_API_KEY={REDACTED}" in dump and "GENTRAIN_ROLE=worker" in dump
    assert "s3_bucket=bucket" in dump and "api_port" not in dump  # defaults are left out
