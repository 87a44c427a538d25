"""Sign-in and sign-out: an API key is posted once and becomes a server-side session; the
browser keeps only a random session id in an HttpOnly cookie. Without keys (loopback) there is
nothing to sign in to."""

from __future__ import annotations

import hmac
import secrets

from flask import current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from services.api.auth import CSRF_FIELD, SESSION_COOKIE, SIGNIN_PATH
from services.ui.blueprint import bp
from shared.settings import Settings
from shared.web_sessions import close_session, find_session, open_session

# The sign-in form's own CSRF token (no session yet): the form carries it and a short-lived
# cookie holds it, so another site's page cannot sign a browser in with its own key.
SIGNIN_COOKIE = "gentrain_signin"
SIGNIN_COOKIE_SECONDS = 3600


def _settings() -> Settings:
    settings: Settings = current_app.extensions["gentrain.settings"]
    return settings


def _secure() -> bool:
    """Cookies are Secure when the dashboard is served over TLS (GENTRAIN_PUBLIC_URL https)."""
    return _settings().public_url.lower().startswith("https://")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, never another site."""
    if (
        target
        and target.startswith("/ui/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch.isprintable() for ch in target)
    ):
        return target
    return url_for("ui.jobs") if "ui.jobs" in current_app.view_functions else "/ui/"


def _form(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    token = secrets.token_urlsafe(32)
    body = render_template(
        "signin.html",
        error=error,
        signin_token=token,
        next=safe_next(request.values.get("next")),
    )
    response = current_app.make_response((body, status))
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_COOKIE_SECONDS,
        path=SIGNIN_PATH,
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/signin")
def signin() -> ResponseReturnValue:
    """The sign-in form (none needed without keys, or when already signed in)."""
    if getattr(g, "keyless", False):
        return redirect(safe_next(request.args.get("next")))
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and find_session(_settings().database_url, session_id) is not None:
        return redirect(safe_next(request.args.get("next")))
    return _form()


@bp.post("/signin")
def signin_post() -> ResponseReturnValue:
    """Check the posted key once, open a session, and set its cookie (the key is not kept)."""
    if getattr(g, "keyless", False):
        return redirect(safe_next(request.form.get("next")), code=303)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    presented = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        return _form("The form expired: please sign in again.", 403)
    key = request.form.get("key", "").strip()
    settings = _settings()
    opened = open_session(settings.database_url, key, settings.ui_session_seconds) if key else None
    if opened is None:
        return _form("That API key is unknown or revoked.", 401)
    session_id, _ = opened
    response = redirect(safe_next(request.form.get("next")), code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=settings.ui_session_seconds,
        path="/",
        secure=_secure(),
        httponly=True,
        samesite="Lax",
    )
    response.delete_cookie(SIGNIN_COOKIE, path=SIGNIN_PATH)
    return response


@bp.post("/signout")
def signout() -> Response:
    """End the session (its CSRF token was checked with the request) and drop the cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        close_session(_settings().database_url, session_id)
    response = redirect(SIGNIN_PATH, code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(), httponly=True, samesite="Lax"
    )
    return response
