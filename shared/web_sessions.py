"""Dashboard sessions: an API key presented once at sign-in becomes a random session id (the
browser's cookie) and a CSRF token. Only the id's SHA-256 is stored, and a session acts for its
key's owner only while that key is live, so revoking a key ends its sessions at once."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select

from shared.api_keys import KEY_PREFIX, digest
from shared.db.models import ApiKey, WebSession, utcnow
from shared.db.session import read_connection, session_scope


@dataclass(frozen=True)
class SessionHolder:
    """Who a live session acts for, and the CSRF token its unsafe requests must carry."""

    owner: str
    is_admin: bool
    csrf_token: str

    def accepts(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (compared in constant time)."""
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token.encode())


_LIVE_KEY = select(ApiKey.id).where(
    ApiKey.digest == bindparam("digest"), ApiKey.revoked_at.is_(None)
)
_LIVE_SESSION = (
    select(WebSession.csrf_token, WebSession.expires_at, ApiKey.owner, ApiKey.is_admin)
    .join(ApiKey, ApiKey.id == WebSession.key_id)
    .where(WebSession.digest == bindparam("digest"), ApiKey.revoked_at.is_(None))
)


def open_session(
    database_url: str, key: str, lifetime_seconds: int
) -> tuple[str, SessionHolder] | None:
    """A new session for a live ``key``: its random id (for the cookie only) and its holder;
    None when the key is unknown, revoked or malformed. Expired sessions are dropped here."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    now = utcnow()
    with session_scope(database_url) as session:
        key_id = session.scalar(_LIVE_KEY, {"digest": digest(key)})
        if key_id is None:
            return None
        holder = session.get(ApiKey, key_id)
        assert holder is not None
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        session.add(
            WebSession(
                digest=digest(session_id),
                key_id=key_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=now + timedelta(seconds=lifetime_seconds),
            )
        )
        found = SessionHolder(holder.owner, holder.is_admin, csrf_token)
    return session_id, found


def find_session(database_url: str, session_id: str) -> SessionHolder | None:
    """Who a session id acts for; None when unknown, expired, or its key is revoked."""
    if not session_id or len(session_id) > 200:
        return None
    with read_connection(database_url) as connection:
        row = connection.execute(_LIVE_SESSION, {"digest": digest(session_id)}).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return SessionHolder(row.owner, row.is_admin, row.csrf_token)


def close_session(database_url: str, session_id: str) -> None:
    """End a session (nothing, when there is none)."""
    with session_scope(database_url) as session:
        session.execute(delete(WebSession).where(WebSession.digest == digest(session_id)))
