"""API keys: created with a random secret shown once, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from shared.db.models import ApiKey, utcnow
from shared.db.session import read_connection, session_scope

KEY_PREFIX = "gt_"
# Matched with fullmatch: re.match lets "$" match before a trailing newline ("alice\n").
OWNER = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")


def digest(key: str) -> str:
    """The stored form of a key (keys are 256-bit random, so a plain hash suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(database_url: str, owner: str, is_admin: bool = False) -> tuple[ApiKey, str]:
    """A new key for ``owner``: the row and the secret, which is not stored and not shown again."""
    if not OWNER.fullmatch(owner):
        raise ValueError("owner must be 1-64 of a-z, 0-9, '_', '.', '@', '-'")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(owner=owner, prefix=secret[:10], digest=digest(secret), is_admin=is_admin)
    with session_scope(database_url) as session:
        session.add(row)
    return row, secret


@dataclass(frozen=True)
class KeyHolder:
    """Who a verified key acts for."""

    owner: str
    is_admin: bool


_LIVE_KEY = select(ApiKey.owner, ApiKey.is_admin).where(
    ApiKey.digest == bindparam("digest"), ApiKey.revoked_at.is_(None)
)


def verify_key(database_url: str, key: str) -> KeyHolder | None:
    """Who ``key`` acts for, or None when it is unknown, revoked or malformed."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    with read_connection(database_url) as connection:
        row = connection.execute(_LIVE_KEY, {"digest": digest(key)}).first()
    return None if row is None else KeyHolder(owner=row.owner, is_admin=row.is_admin)


def revoke_key(database_url: str, key_id: str) -> bool:
    """Revoke a key by id; False if there is no such key."""
    with session_scope(database_url) as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            return False
        row.revoked_at = row.revoked_at or utcnow()
        return True


def list_keys(database_url: str) -> list[ApiKey]:
    """Every key, newest first (digests only; secrets are never stored)."""
    with session_scope(database_url) as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))
