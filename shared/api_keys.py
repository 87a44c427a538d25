"""API keys: created with a random secret shown once, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select

from shared.db.models import ApiKey, utcnow
from shared.db.session import session_scope

KEY_PREFIX = "gt_"
OWNER = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")


def digest(key: str) -> str:
    """The stored form of a key (keys are 256-bit random, so a plain hash suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(database_url: str, owner: str, is_admin: bool = False) -> tuple[ApiKey, str]:
    """A new key for ``owner``: the row and the secret, which is not stored and not shown again."""
    if not OWNER.match(owner):
        raise ValueError("owner must be 1-64 of a-z, 0-9, '_', '.', '@', '-'")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(owner=owner, prefix=secret[:10], digest=digest(secret), is_admin=is_admin)
    with session_scope(database_url) as session:
        session.add(row)
    return row, secret


def verify_key(database_url: str, key: str) -> ApiKey | None:
    """The live key row matching ``key``, or None (unknown or revoked)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    with session_scope(database_url) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.digest == digest(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


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
