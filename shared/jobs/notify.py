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

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "gentrain:job-changes"  # then ":<Redis database number>"
_PENDING = "gentrain.changed_jobs"

_client: redis.Redis | None = None
_channel = CHANNEL


def channel(client: redis.Redis) -> str:
    """The channel of the deployment whose broker is ``client``'s Redis database (pub/sub
    channels span a server's databases; deployments that share a server use distinct ones)."""
    return f"{CHANNEL}:{client.connection_pool.connection_kwargs.get('db', 0)}"


def configure(broker_url: str) -> None:
    """Publish this process's job changes on ``broker_url`` if it is Redis (else nothing)."""
    global _client, _channel
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        # Short timeouts: a commit never waits long on a hint.
        _client = redis.Redis.from_url(broker_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _channel = channel(_client)
    else:
        _client = None


def mark_changed(session: Session, job_id: str, owner: str | None) -> None:
    """Note that this transaction changed ``job_id``; published once it commits."""
    session.info.setdefault(_PENDING, {})[job_id] = owner


def message(job_id: str, owner: str | None) -> str:
    """The notification of one changed job (readers take it as a hint to read the log; the
    ids help whoever watches the channel with redis-cli)."""
    return json.dumps({"job": job_id, "owner": owner})


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    changed = session.info.pop(_PENDING, None)
    if not changed or _client is None:
        return
    try:
        with _client.pipeline(transaction=False) as pipe:
            for job_id, owner in changed.items():
                pipe.publish(_channel, message(job_id, owner))
            pipe.execute()
    except redis.RedisError as error:  # the readers' next poll finds the changes
        log.debug("could not publish job changes: %s", error)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
