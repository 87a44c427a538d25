"""Authentication and tenancy: who is calling, and which rows they may see."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, g, request

from services.api.errors import ApiError
from shared.api_keys import digest, verify_key
from shared.settings import Settings

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json"})


@dataclass(frozen=True)
class Caller:
    """The owner the request acts for; an admin sees every owner's rows."""

    owner: str
    is_admin: bool


class VerifiedKeys:
    """Keys this process verified in the last ``ttl`` seconds, by digest.

    A client polling its job every second would otherwise cost a key lookup per request. Only
    keys found live are remembered, so a revoked key stops working here within ``ttl`` seconds
    and an unknown one is looked up every time.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, key_digest: str) -> Caller | None:
        """The caller a key verified recently acts for, or None (never verified, or stale)."""
        entry = self._entries.get(key_digest)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key_digest: str, verified: Caller) -> None:
        """Remember a key just verified live (nothing, when caching is off)."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # a flood of distinct keys: start over rather than grow
        self._entries[key_digest] = (time.monotonic() + self.ttl, verified)


def caller() -> Caller:
    """The authenticated caller of this request."""
    current: Caller = g.caller
    return current


def can_see(owner: str) -> bool:
    """Whether the caller may see a row owned by ``owner``."""
    current = caller()
    return current.is_admin or current.owner == owner


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def _verified(database_url: str, keys: VerifiedKeys, key: str) -> Caller | None:
    key_digest = digest(key)
    cached = keys.get(key_digest)
    if cached is not None:
        return cached
    holder = verify_key(database_url, key)
    if holder is None:
        return None
    verified = Caller(owner=holder.owner, is_admin=holder.is_admin)
    keys.put(key_digest, verified)
    return verified


def register_auth(app: Flask, settings: Settings) -> None:
    """Check the API key of every request but the probes (when keys are required)."""
    keys = VerifiedKeys(settings.api_key_cache_seconds)

    @app.before_request
    def _authenticate() -> None:
        if "\x00" in request.path:
            # No id or name holds a NUL; PostgreSQL cannot even compare one.
            raise ApiError(404, "not_found", "no such resource")
        if not settings.auth_required:
            # Loopback only, no keys: a single local user who sees everything.
            g.caller = Caller(owner="", is_admin=True)
            return
        if request.path in PUBLIC_PATHS:
            g.caller = Caller(owner="", is_admin=False)
            return
        key = _presented_key()
        if not key:
            raise ApiError(401, "unauthorized", "send an API key: Authorization: Bearer <key>")
        verified = _verified(settings.database_url, keys, key)
        if verified is None:
            raise ApiError(401, "unauthorized", "the API key is unknown or revoked")
        g.caller = verified
