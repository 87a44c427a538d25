"""Authentication and tenancy: who is calling, and which rows they may see."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Request, current_app, g, redirect, request
from werkzeug.wrappers import Response

from services.api.errors import ApiError
from shared.api_keys import digest, verify_key
from shared.settings import Settings
from shared.web_sessions import SessionHolder, find_session

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json"})
# Prometheus metrics: an admin key, or a scrape from this machine (see _local_scrape).
METRICS_PATH = "/metrics"
# Dashboard paths anyone may load: the sign-in page and the styles and scripts it uses.
PUBLIC_UI_PATHS = frozenset({"/ui/signin"})
PUBLIC_UI_PREFIX = "/ui/static/"
SIGNIN_PATH = "/ui/signin"
# The dashboard's session: the cookie holds a random id, never the key.
SESSION_COOKIE = "gentrain_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# A request through a proxy comes from wherever the proxy's client is.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
# The names a browser on this machine uses for the API; any other Host is DNS rebinding.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, str) or not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address == "localhost"


def _arrived_on_loopback(environ: dict[str, Any]) -> bool:
    """Whether this connection came from loopback to a loopback address, with no proxy hop.

    gunicorn hands the connection's socket over: its local address is where the server really
    listens for this client (``-b 0.0.0.0`` reached from elsewhere is not loopback), whatever
    GENTRAIN_API_HOST says. A server without it (Flask's test client) is judged by the peer.
    """
    if not _is_loopback(environ.get("REMOTE_ADDR")):
        return False
    connection = environ.get("gunicorn.socket")
    if connection is not None:
        try:
            if not _is_loopback(connection.getsockname()[0]):
                return False
        except (OSError, IndexError, TypeError):
            return False
    return not any(
        f"HTTP_{name.upper().replace('-', '_')}" in environ for name in FORWARDING_HEADERS
    )


def _host_name(host: str) -> str:
    """``host`` without its port: ``localhost:8000`` → ``localhost``, ``[::1]:80`` → ``[::1]``."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refuse_cross_site() -> None:
    """Keyless mode: a browser page from another origin must not post to the API (CSRF)."""
    if request.method not in UNSAFE_METHODS:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        raise ApiError(403, "cross_site_request", "cross-site requests are refused without keys")
    origin = request.headers.get("Origin")
    if origin is not None and (
        origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()
    ):
        raise ApiError(403, "cross_site_request", "cross-site requests are refused without keys")


def is_ui_path(path: str) -> bool:
    """Whether ``path`` is a dashboard page (unauthenticated: sent to sign in, not a 401)."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path in PUBLIC_UI_PATHS or path.startswith(PUBLIC_UI_PREFIX)


def _presented_csrf_token() -> str | None:
    """The CSRF token an unsafe request carries: the header (the page's fetch), else the form
    field (a plain form post)."""
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get(CSRF_FIELD)
    return None


def _session_caller(settings: Settings) -> SessionHolder | None:
    """The live session the request's cookie names; an unsafe request must carry its CSRF
    token (a cookie is sent by the browser whoever made the page, a token only by our pages)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    found = find_session(settings.database_url, session_id)
    if found is None:
        return None
    if request.method in UNSAFE_METHODS and not found.accepts(_presented_csrf_token()):
        raise ApiError(
            403, "csrf_failed", f"send the page's CSRF token ({CSRF_HEADER} or {CSRF_FIELD})"
        )
    return found


def signin_redirect() -> Response:
    """To the sign-in page, coming back to this page after."""
    target = request.full_path if request.query_string else request.path
    return redirect(f"{SIGNIN_PATH}?next={quote(target, safe='/')}", code=302)


class ApiRequest(Request):
    """A request whose ``host_url``, the base of every link the API returns, comes from
    GENTRAIN_PUBLIC_URL, never from a ``Host`` header a client made up; without it, the
    request's own host in keyless loopback mode (checked there), else root-relative links."""

    @cached_property
    def host_url(self) -> str:  # type: ignore[override]
        settings: Settings = current_app.extensions["gentrain.settings"]
        if settings.public_url:
            return settings.public_url.rstrip("/") + "/"
        if getattr(g, "keyless", False):
            return super().host_url
        return "/"


def _local_scrape(settings: Settings) -> bool:
    """A ``GET /metrics`` from a Prometheus on this machine: no key needed, unless keys are
    required for everything (GENTRAIN_AUTH=required, which also covers a proxy on loopback that
    hides its clients). From anywhere else it needs an admin key: it names owners and jobs."""
    return (
        request.path == METRICS_PATH
        and request.method in ("GET", "HEAD")
        and settings.auth != "required"
        and _arrived_on_loopback(request.environ)
    )


def register_auth(app: Flask, settings: Settings) -> None:
    """Check the API key of every request but the probes (when keys are required)."""
    keys = VerifiedKeys(settings.api_key_cache_seconds)

    @app.before_request
    def _authenticate() -> Response | None:
        if "\x00" in request.path:
            # No id or name holds a NUL; PostgreSQL cannot even compare one.
            raise ApiError(404, "not_found", "no such resource")
        if not settings.auth_required and _arrived_on_loopback(request.environ):
            # Loopback only, no keys: a single local user who sees everything, so only through
            # a loopback name (DNS rebinding) and never from another site's page (CSRF).
            if _host_name(request.host.lower()) not in LOOPBACK_HOSTS:
                raise ApiError(403, "forbidden_host", "without keys only localhost may be used")
            _refuse_cross_site()
            g.keyless = True
            g.caller = Caller(owner="", is_admin=True)
            return None
        if _is_public(request.path):
            g.caller = Caller(owner="", is_admin=False)
            return None
        if _local_scrape(settings):
            g.caller = Caller(owner="", is_admin=True)
            return None
        key = _presented_key()
        if key:
            verified = _verified(settings.database_url, keys, key)
            if verified is None:
                raise ApiError(401, "unauthorized", "the API key is unknown or revoked")
            g.caller = verified
            return None
        # A signed-in browser: its cookie stands for the key (an EventSource sends no headers).
        session = _session_caller(settings)
        if session is not None:
            g.web_session = session
            g.caller = Caller(owner=session.owner, is_admin=session.is_admin)
            return None
        if is_ui_path(request.path) and request.method in ("GET", "HEAD"):
            return signin_redirect()
        raise ApiError(401, "unauthorized", "send an API key: Authorization: Bearer <key>")
