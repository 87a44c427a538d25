"""Redaction of secrets from text that is stored or shown (a job's log): API keys, passwords in
URLs, bearer tokens, and the values of settings and ``GENTRAIN_*`` variables named as secrets."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from shared.api_keys import KEY_PREFIX
from shared.settings import Settings

REDACTED = "***"
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN")
# A key is KEY_PREFIX and 43 characters of token_urlsafe(32); anything of that shape goes,
# a revoked or mistyped key included.
API_KEY = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{16,}")
# scheme://user:password@host: the password, whatever the scheme (database, broker, S3).
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)")
BEARER = re.compile(r"(?P<head>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# A short secret ("test") is redacted only as a whole word: anywhere, it would also cut
# "test_loss" and "y_test" to pieces. A long one cannot appear by chance and goes anywhere.
WHOLE_WORD_BELOW = 8


def is_secret_name(name: str) -> bool:
    """Whether a setting or variable of this name holds a secret (API_KEY, S3_SECRET_...)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def url_password(url: str) -> str | None:
    """The password in ``url`` (as written and as decoded), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return password or None


def secret_values(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values ``settings`` and the ``GENTRAIN_*`` environment hold that must never be shown:
    string settings named as secrets (the S3 keys), passwords in any URL setting, and
    ``GENTRAIN_*`` variables named as secrets that are not settings (``GENTRAIN_API_KEY``)."""
    environ = os.environ if environ is None else environ
    values: list[str] = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if not isinstance(value, str) or not value:
            continue
        if is_secret_name(name):
            values.append(value)
        if (password := url_password(value)) is not None:
            values += [password, unquote(password)]
    for name, value in environ.items():
        field = name.removeprefix("GENTRAIN_").lower()
        if name.startswith("GENTRAIN_") and field not in Settings.model_fields:
            if is_secret_name(field) and value:
                values.append(value)
            if (password := url_password(value)) is not None:
                values += [password, unquote(password)]
    return values


class Redactor:
    """Replaces every secret in a text with ``***``: the given values, API keys, passwords in
    URLs and bearer tokens."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True)
        long = [re.escape(s) for s in unique if len(s) >= WHOLE_WORD_BELOW]
        short = [rf"(?<!\w){re.escape(s)}(?!\w)" for s in unique if len(s) < WHOLE_WORD_BELOW]
        self._literals = re.compile("|".join(long + short)) if unique else None

    @classmethod
    def for_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor of every secret ``settings`` and the environment hold."""
        return cls(secret_values(settings, environ))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if self._literals is not None:
            text = self._literals.sub(REDACTED, text)
        text = API_KEY.sub(REDACTED, text)
        text = URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
        return BEARER.sub(lambda m: m.group("head") + REDACTED, text)


def redacted_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """``name=value`` for every setting not at its default and every other ``GENTRAIN_*``
    variable, secrets masked (for a log's header: what a job ran with)."""
    environ = os.environ if environ is None else environ
    redact = Redactor.for_settings(settings, environ)
    defaults = Settings.model_construct()
    lines = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value == getattr(defaults, name) or value in ("", None):
            continue
        shown = REDACTED if is_secret_name(name) and isinstance(value, str) else redact(str(value))
        lines.append(f"{name}={shown}")
    for variable in sorted(environ):
        field = variable.removeprefix("GENTRAIN_").lower()
        if variable.startswith("GENTRAIN_") and field not in Settings.model_fields:
            shown = REDACTED if is_secret_name(field) else redact(environ[variable])
            lines.append(f"{variable}={shown}")
    return lines
