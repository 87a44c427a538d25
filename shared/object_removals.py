"""The record of storage objects to remove (``object_removals``): written in the transaction that
deletes or expires the rows naming them, so objects are never forgotten when storage fails or a
late upload lands after the delete. ``shared.retention`` removes them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.db.models import ObjectRemoval, utcnow
from shared.storage import ObjectStore

log = logging.getLogger(__name__)


def note_removals(session: Session, keys: Iterable[str]) -> list[int]:
    """Record keys (or prefixes ending in "/") to remove, in the caller's transaction; their ids."""
    rows = [ObjectRemoval(key=key, created_at=utcnow()) for key in keys]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def due_removals(session: Session, noted_before: datetime, limit: int) -> Sequence[ObjectRemoval]:
    """Removals recorded before ``noted_before``, oldest first."""
    query = (
        select(ObjectRemoval)
        .where(ObjectRemoval.created_at < noted_before)
        .order_by(ObjectRemoval.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def forget_removal(session: Session, removal_id: int) -> None:
    """The objects of a removal are gone: drop its record."""
    session.execute(delete(ObjectRemoval).where(ObjectRemoval.id == removal_id))


def remove_objects(store: ObjectStore, key: str) -> None:
    """Remove the object at ``key``, or every object under it when it is a prefix (ends in /)."""
    if key.endswith("/"):
        store.delete_many(store.list_keys(key))
    else:
        store.delete(key)


def remove_now(store: ObjectStore, keys: Iterable[str]) -> bool:
    """Remove what was just recorded, at once; False if storage failed (logged: the reaper
    removes it later, as it removes everything recorded again after a grace period)."""
    done = True
    for key in keys:
        try:
            remove_objects(store, key)
        except Exception:  # noqa: BLE001 - any storage failure: the record stays for the reaper
            log.warning("cannot remove %s now; the reaper will", key, exc_info=True)
            done = False
    return done
