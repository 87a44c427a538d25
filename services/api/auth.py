"""Authentication and tenancy: who is calling, and which rows they may see."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, g, request

from services.api import deps
from services.api.errors import ApiError
from shared.api_keys import verify_key

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json"})


@dataclass(frozen=True)
class Caller:
    """The owner the request acts for; an admin sees every owner's rows."""

    owner: str
    is_admin: bool


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


def register_auth(app: Flask) -> None:
    """Check the API key of every request but the probes (when keys are required)."""

    @app.before_request
    def _authenticate() -> None:
        if "\x00" in request.path:
            # No id or name holds a NUL; PostgreSQL cannot even compare one.
            raise ApiError(404, "not_found", "no such resource")
        settings = deps.settings()
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
        row = verify_key(settings.database_url, key)
        if row is None:
            raise ApiError(401, "unauthorized", "the API key is unknown or revoked")
        g.caller = Caller(owner=row.owner, is_admin=row.is_admin)
