"""The process's watcher of the change log: it reads each new entry once and wakes the streams
that show it.

Streams wait on keys (``job:<id>`` for one job, ``owner:<name>`` or ``all`` for a job list).
The watcher reads the entries after its cursor into ``recent`` (``event_recent``), from which
caught-up streams take them without a query of their own, and wakes the streams of the jobs they
belong to. It reads when Redis says something changed (``shared.jobs.notify``: within
milliseconds of a commit, at most one read per ``COALESCE_SECONDS`` however many changes come),
and otherwise every ``poll_seconds`` without Redis (the embedded mode) and every
``SAFETY_SCAN_SECONDS`` with it, so a lost notification only delays an event. So one process
runs one query per read, however many streams are open, and only while one is.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import Connection

from services.api import event_reads
from services.api.event_cursor import GAP_GRACE_SECONDS, CrossJobCursor
from services.api.event_recent import RecentEntries
from services.api.job_reads import AnyRow
from shared.db.session import get_engine, read_connection
from shared.jobs import notify

log = logging.getLogger(__name__)

SAFETY_SCAN_SECONDS = 5.0
RESUBSCRIBE_SECONDS = 5.0
# Changes notified within this long of the last read wait for one read together.
COALESCE_SECONDS = 0.1
SCAN_LIMIT = 2000


def job_key(job_id: str) -> str:
    """The key a stream of one job waits on."""
    return f"job:{job_id}"


def owner_key(owner: str | None) -> str:
    """The key a stream of an owner's jobs waits on (None: every owner's, for an admin)."""
    return "all" if owner is None else f"owner:{owner}"


class Waiter:
    """One stream's wake-up flag."""

    def __init__(self) -> None:
        self._flag = threading.Event()

    def wake(self) -> None:
        """Make the next (or current) ``wait`` return at once."""
        self._flag.set()

    def wait(self, timeout: float) -> bool:
        """Block until woken or ``timeout`` passes; whether it was woken."""
        woken = self._flag.wait(timeout)
        self._flag.clear()
        return woken


class WakeUps:
    """The process's watcher of the change log, started by the first stream."""

    def __init__(self, database_url: str, broker_url: str, poll_seconds: float) -> None:
        self.database_url = database_url
        self.broker_url = broker_url if broker_url.startswith(("redis://", "rediss://")) else ""
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}
        self._cursor: CrossJobCursor | None = None
        self._thread: threading.Thread | None = None
        self.listening = False  # subscribed to Redis right now
        self.recent = RecentEntries()
        self._connection: Connection | None = None  # the watcher's own, while streams are open

    @contextmanager
    def waiter(self, keys: Iterable[str]) -> Iterator[Waiter]:
        """A waiter woken by changes under any of ``keys``, for the duration of a stream."""
        waiter, keys = Waiter(), list(keys)
        with self._lock:
            idle = not any(self._waiters.values())
        start = None
        if idle:
            # Reads start below the entries of the last grace period, whose ids may have holes
            # that commit later; they are settled into the window with the rest.
            since = datetime.now(UTC) - timedelta(seconds=GAP_GRACE_SECONDS)
            with read_connection(self.database_url) as connection:
                start = CrossJobCursor(event_reads.last_before(connection, since))
        with self._lock:
            if start is not None and not any(self._waiters.values()):
                self._cursor = start
                self.recent.reset()
            for key in keys:
                self._waiters.setdefault(key, set()).add(waiter)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-wakeups", daemon=True)
                self._thread.start()
        try:
            yield waiter
        finally:
            with self._lock:
                for key in keys:
                    self._waiters.get(key, set()).discard(waiter)
                    if not self._waiters.get(key):
                        self._waiters.pop(key, None)

    @property
    def open_streams(self) -> int:
        """How many waiters are registered (a stream of one job counts once)."""
        with self._lock:
            return len({waiter for waiters in self._waiters.values() for waiter in waiters})

    def wake(self, job_id: str, owner: str | None) -> None:
        """Wake the streams of a changed job: its own, its owner's list and admins' lists."""
        keys = [job_key(job_id), owner_key(None)]
        if owner is not None:
            keys.append(owner_key(owner))
        with self._lock:
            waiters = {waiter for key in keys for waiter in self._waiters.get(key, ())}
        for waiter in waiters:
            waiter.wake()

    def _run(self) -> None:
        pubsub: redis.client.PubSub | None = None
        retry_at = 0.0
        scanned_at = 0.0
        pending = False  # a change was notified and not read yet
        while True:
            now = time.monotonic()
            if self.broker_url and pubsub is None and now >= retry_at:
                pubsub = self._subscribe()
                retry_at = now + RESUBSCRIBE_SECONDS
            interval = SAFETY_SCAN_SECONDS if pubsub is not None else self.poll_seconds
            due = scanned_at + (COALESCE_SECONDS if pending else interval)
            if pubsub is not None:
                try:
                    pending = self._listen(pubsub, max(0.0, due - now)) or pending
                except (redis.RedisError, OSError) as error:
                    log.info("event wake-ups: Redis lost (%s); polling the database", error)
                    pubsub, self.listening = None, False
            else:
                time.sleep(max(0.0, due - now))
            now = time.monotonic()
            if now - scanned_at >= (COALESCE_SECONDS if pending else interval):
                scanned_at, pending = now, False
                try:
                    self._scan()
                except Exception:  # noqa: BLE001 - a database hiccup: the next scan retries
                    log.exception("event wake-ups: read of the change log failed")

    def _subscribe(self) -> redis.client.PubSub | None:
        try:
            client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(notify.channel(client))
        except (redis.RedisError, OSError) as error:
            log.info("event wake-ups: cannot subscribe on Redis (%s); polling", error)
            return None
        self.listening = True
        return pubsub

    def _listen(self, pubsub: redis.client.PubSub, seconds: float) -> bool:
        """Wait up to ``seconds`` for a notification; whether one came (it names a job, or
        nothing: either way the next read finds what changed)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=remaining)
            if message is not None and message.get("type") == "message":
                return True
        return False

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """The watcher's own connection, held while streams are open (its reads skip the pool's
        checkout and ping); dropped on any error, and once no stream is open."""
        if self._connection is None:
            connection = get_engine(self.database_url).connect()
            connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        try:
            yield self._connection
        except Exception:
            self._release()
            raise

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def _scan(self) -> None:
        with self._lock:
            idle = not any(self._waiters.values())
            cursor = self._cursor
        if idle or cursor is None:
            self._release()
            return
        settled_before = datetime.now(UTC) - timedelta(seconds=GAP_GRACE_SECONDS)
        fresh: list[AnyRow] = []
        start = cursor.floor
        with self._reading() as connection:
            while True:
                rows = event_reads.entries_after(connection, start, SCAN_LIMIT)
                for row in rows:
                    if cursor.take([row.id], old=row.at < settled_before):
                        fresh.append(row)
                if len(rows) < SCAN_LIMIT:
                    break
                start = rows[-1].id  # read on past a hole that holds the floor back
        if cursor is not self._cursor:
            return  # the watcher started again meanwhile, from the head
        self.recent.extend(fresh)
        woken: set[tuple[str, str | None]] = {(row.job_id, row.owner) for row in fresh}
        for job_id, owner in woken:
            self.wake(job_id, owner)
