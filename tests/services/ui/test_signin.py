"""Dashboard sign-in on the server (Flask's client), on SQLite and on PostgreSQL: a key posted
once becomes a session whose cookie holds only a random id; the cookie authenticates pages and
API calls (the event streams too); unsafe requests need the CSRF token; expiry, revoked keys and
sign-out end a session; the key never shows up in a URL, a cookie, a page or a log."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from services.api import create_app
from services.api.auth import SESSION_COOKIE
from services.ui.signin import SIGNIN_COOKIE
from shared.api_keys import create_key, digest, revoke_key
from shared.db.models import WebSession, utcnow
from shared.db.session import session_scope
from shared.settings import Settings
from tests.services.ui import written_jobs as w


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": "required"})


@pytest.fixture
def app(keyed: Settings) -> Flask:
    return create_app(keyed)


def signin_form(client: FlaskClient, path: str = "/ui/signin") -> str:
    """The sign-in page's form token (its cookie is now in ``client``)."""
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match is not None
    return match.group(1)


def sign_in(client: FlaskClient, key: str, next_path: str = "") -> TestResponse:
    token = signin_form(client)
    return client.post("/ui/signin", data={"key": key, "csrf_token": token, "next": next_path})


def csrf_of(client: FlaskClient, path: str = "/ui/") -> str:
    """The CSRF token a signed-in page carries in its meta tag."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert match is not None and match.group(1), html[:500]
    return match.group(1)


def set_cookie_header(response: TestResponse, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def test_pages_need_sign_in_and_the_api_stays_401(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/ui/?status=running")
    assert response.status_code == 302
    assert response.headers["Location"] == "/ui/signin?next=/ui/%3Fstatus%3Drunning"
    assert client.get("/").status_code == 302
    api = client.get("/v1/jobs")
    assert api.status_code == 401 and api.json is not None
    assert api.json["error"]["code"] == "unauthorized"
    # The sign-in page and its styles need nothing.
    assert client.get("/ui/signin").status_code == 200
    assert client.get("/ui/static/app.css").status_code == 200


def test_sign_in_sets_a_session_cookie_that_holds_no_key(app: Flask, keyed: Settings) -> None:
    _, key = create_key(keyed.database_url, "alice")
    client = app.test_client()
    response = sign_in(client, key, "/ui/?kind=gan")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/?kind=gan"
    cookie = set_cookie_header(response, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    session_id = cookie.split(";", 1)[0].split("=", 1)[1]
    assert key not in cookie and session_id not in key
    with session_scope(keyed.database_url) as session:
        stored = session.get(WebSession, digest(session_id))
        assert stored is not None  # only the id's digest is stored
        assert stored.expires_at - stored.created_at == timedelta(seconds=keyed.ui_session_seconds)
    html = client.get("/ui/").get_data(as_text=True)
    assert "alice" in html and "Sign out" in html and key not in html


def test_the_cookie_is_secure_behind_https(keyed: Settings) -> None:
    secured = keyed.model_copy(update={"public_url": "https://gentrain.example.com"})
    _, key = create_key(secured.database_url, "alice")
    client = create_app(secured).test_client()
    form = client.get("/ui/signin")
    assert "Secure" in set_cookie_header(form, SIGNIN_COOKIE)
    assert "Secure" in set_cookie_header(sign_in(client, key), SESSION_COOKIE)


def test_a_wrong_key_or_form_token_is_refused_and_the_key_is_never_shown(
    app: Flask, keyed: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, key = create_key(keyed.database_url, "alice")
    client = app.test_client()
    wrong = "gt_" + "x" * 43
    refused = sign_in(client, wrong)
    assert refused.status_code == 401
    assert wrong not in refused.get_data(as_text=True)
    assert SESSION_COOKIE not in str(refused.headers.getlist("Set-Cookie"))
    # Without the form's own token (another site's page posting a key): refused.
    signin_form(client)
    forged = client.post("/ui/signin", data={"key": key, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert SESSION_COOKIE not in str(forged.headers.getlist("Set-Cookie"))
    # Signed in: the key is in no URL, header or log line.
    response = sign_in(client, key, "https://evil.example/")
    assert response.headers["Location"] == "/ui/"  # never to another site
    for value in response.headers.values():
        assert key not in value
    assert key not in caplog.text and wrong not in caplog.text


def test_the_cookie_authenticates_the_api_and_unsafe_calls_need_the_csrf_token(
    app: Flask, keyed: Settings
) -> None:
    _, key = create_key(keyed.database_url, "alice")
    client = app.test_client()
    sign_in(client, key)
    listed = client.get("/v1/jobs")
    assert listed.status_code == 200 and listed.json is not None
    job_id = w.new_job(keyed.database_url, "autoencoder", {"epochs": 1}, owner="alice")
    cancel = f"/v1/jobs/{job_id}/cancel"
    refused = client.post(cancel)
    assert refused.status_code == 403 and refused.json is not None
    assert refused.json["error"]["code"] == "csrf_failed"
    assert client.post(cancel, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert client.post(cancel, data={"csrf_token": "nope"}).status_code == 403
    token = csrf_of(client)
    cancelled = client.post(cancel, headers={"X-CSRF-Token": token})
    assert cancelled.status_code == 202, cancelled.get_data(as_text=True)
    assert cancelled.json is not None and cancelled.json["status"] == "cancelled"
    # An EventSource sends the cookie and no header: the list stream opens with it.
    stream = client.get("/v1/events", buffered=False)
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    stream.close()
    # A Bearer key needs no token, as before.
    other = w.new_job(keyed.database_url, "autoencoder", {"epochs": 1}, owner="alice")
    bearer = app.test_client().post(
        f"/v1/jobs/{other}/cancel", headers={"Authorization": f"Bearer {key}"}
    )
    assert bearer.status_code == 202


def test_sign_out_needs_the_token_and_ends_the_session(app: Flask, keyed: Settings) -> None:
    _, key = create_key(keyed.database_url, "alice")
    client = app.test_client()
    sign_in(client, key)
    token = csrf_of(client)
    assert client.post("/ui/signout").status_code == 403
    assert client.post("/ui/signout", data={"csrf_token": "nope"}).status_code == 403
    assert client.get("/ui/").status_code == 200  # still signed in
    session_id = client.get_cookie(SESSION_COOKIE)
    assert session_id is not None
    out = client.post("/ui/signout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/ui/signin"
    assert client.get_cookie(SESSION_COOKIE) is None
    with session_scope(keyed.database_url) as session:
        assert session.get(WebSession, digest(session_id.value)) is None
    # The old id no longer works, even sent again by hand.
    replay = app.test_client()
    replay.set_cookie(SESSION_COOKIE, session_id.value)
    assert replay.get("/ui/").status_code == 302
    assert replay.get("/v1/jobs").status_code == 401


def test_an_expired_session_or_a_revoked_key_ends_it(app: Flask, keyed: Settings) -> None:
    row, key = create_key(keyed.database_url, "alice")
    first, second = app.test_client(), app.test_client()
    sign_in(first, key)
    sign_in(second, key)
    first_id = first.get_cookie(SESSION_COOKIE)
    assert first_id is not None
    with session_scope(keyed.database_url) as session:
        session.execute(
            update(WebSession)
            .where(WebSession.digest == digest(first_id.value))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert first.get("/ui/").status_code == 302
    assert first.get("/v1/jobs").status_code == 401
    assert second.get("/ui/").status_code == 200
    assert revoke_key(keyed.database_url, row.id)
    assert second.get("/ui/").status_code == 302
    assert second.get("/v1/events").status_code == 401


def test_keyless_loopback_needs_no_sign_in(settings: Settings) -> None:
    client = create_app(settings).test_client()
    assert settings.auth == "auto" and not settings.auth_required
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "Sign out" not in page.get_data(as_text=True)
    assert client.get("/ui/signin").headers["Location"] == "/ui/"
    # No token is needed there (no cookie); another site's page is still refused.
    job_id = w.new_job(settings.database_url, "autoencoder", {"epochs": 1})
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    cross = client.post("/ui/signout", headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403


def test_a_signed_in_owner_sees_only_their_jobs(app: Flask, keyed: Settings) -> None:
    url = keyed.database_url
    _, alice = create_key(url, "alice")
    mine = w.new_job(url, "autoencoder", {"epochs": 1}, owner="alice")
    theirs = w.new_job(url, "autoencoder", {"epochs": 1}, owner="bob")
    client = app.test_client()
    sign_in(client, alice)
    html = client.get("/ui/").get_data(as_text=True)
    assert f'data-job-id="{mine}"' in html and theirs not in html
    assert client.get(f"/ui/jobs/{theirs}").status_code == 404
    assert client.get(f"/v1/jobs/{theirs}/events", buffered=False).status_code == 404
