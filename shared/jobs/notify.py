"""Wake-ups for readers of the change log: after a transaction that changed jobs commits, their
ids (and owners) are published on a Redis channel, so an open event stream reads the new entries
at once instead of at its next poll.

A notification is only a hint. The change log in the database is what readers read; a lost or
late notification (Redis down, no Redis in the embedded mode) delays an event until the reader's
next poll and never loses it. Each process that writes jobs calls ``configure`` once with its
broker URL; an unconfigured process (or a broker that is not Redis) publishes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "gentrain:job-changes"
_PENDING = "gentrain.changed_jobs"

_client: redis.Redis | None = None


def configure(broker_url: str) -> None:
    """Publish this process's job changes on ``broker_url`` if it is Redis (else nothing)."""
    global _client
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        # Short timeouts: a commit never waits long on a hint.
        _client = redis.Redis.from_url(broker_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    else:
        _client = None


def mark_changed(session: Session, job_id: str, owner: str | None) -> None:
    """Note that this transaction changed ``job_id``; published once it commits."""
    session.info.setdefault(_PENDING, {})[job_id] = owner


def message(job_id: str, owner: str | None) -> str:
    """The notification of one changed job."""
    return json.dumps({"job": job_id, "owner": owner})


def parse(data: Any) -> tuple[str, str | None] | None:
    """The (job id, owner) of a notification, or None if it is not one."""
    try:
        decoded = json.loads(data)
        job_id, owner = decoded["job"], decoded.get("owner")
    except (TypeError, ValueError, KeyError):
        return None
    if not isinstance(job_id, str) or not (owner is None or isinstance(owner, str)):
        return None
    return job_id, owner


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    changed = session.info.pop(_PENDING, None)
    if not changed or _client is None:
        return
    try:
        with _client.pipeline(transaction=False) as pipe:
            for job_id, owner in changed.items():
                pipe.publish(CHANNEL, message(job_id, owner))
            pipe.execute()
    except redis.RedisError as error:  # the readers' next poll finds the changes
        log.debug("could not publish job changes: %s", error)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
