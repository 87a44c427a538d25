"""When an open event stream should read the change log again: one watcher per API process.

Streams wait on keys (``job:<id>`` for one job, ``owner:<name>`` or ``all`` for a job list).
The watcher wakes them from two sources: notifications on Redis (``shared.jobs.notify``), which
arrive within milliseconds of a commit, and a scan of the change log for ids it has not seen,
every ``poll_seconds`` without Redis (the embedded mode) and every ``SAFETY_SCAN_SECONDS`` with
it, so a lost notification only delays an event. Either way one process runs one query per scan,
however many streams are open, and only while one is. A stream also reads again by itself at
every keep-alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis

from services.api import event_reads
from services.api.event_cursor import CrossJobCursor
from shared.db.session import read_connection
from shared.jobs import notify

log = logging.getLogger(__name__)

SAFETY_SCAN_SECONDS = 5.0
RESUBSCRIBE_SECONDS = 5.0
SCAN_LIMIT = 5000


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

    @contextmanager
    def waiter(self, keys: Iterable[str]) -> Iterator[Waiter]:
        """A waiter woken by changes under any of ``keys``, for the duration of a stream."""
        waiter, keys = Waiter(), list(keys)
        with self._lock:
            idle = not any(self._waiters.values())
        start = None
        if idle:  # scans start at the head, read before the stream's first read
            with read_connection(self.database_url) as connection:
                start = CrossJobCursor(event_reads.head(connection))
        with self._lock:
            if start is not None and not any(self._waiters.values()):
                self._cursor = start
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

    def wake_all(self) -> None:
        """Wake every stream (a notification that names no job, or the scan's start)."""
        with self._lock:
            waiters = {waiter for waiters in self._waiters.values() for waiter in waiters}
        for waiter in waiters:
            waiter.wake()

    def _run(self) -> None:
        pubsub: redis.client.PubSub | None = None
        retry_at = 0.0
        scanned_at = 0.0
        while True:
            now = time.monotonic()
            if self.broker_url and pubsub is None and now >= retry_at:
                pubsub = self._subscribe()
                retry_at = now + RESUBSCRIBE_SECONDS
            interval = SAFETY_SCAN_SECONDS if pubsub is not None else self.poll_seconds
            wait = max(0.0, scanned_at + interval - now)
            if pubsub is not None:
                try:
                    self._listen(pubsub, wait)
                except (redis.RedisError, OSError) as error:
                    log.info("event wake-ups: Redis lost (%s); polling the database", error)
                    pubsub, self.listening = None, False
            else:
                time.sleep(wait)
            if time.monotonic() - scanned_at >= interval:
                scanned_at = time.monotonic()
                try:
                    self._scan()
                except Exception:  # noqa: BLE001 - a database hiccup: the next scan retries
                    log.exception("event wake-ups: scan of the change log failed")

    def _subscribe(self) -> redis.client.PubSub | None:
        try:
            client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(notify.CHANNEL)
        except (redis.RedisError, OSError) as error:
            log.info("event wake-ups: cannot subscribe on Redis (%s); polling", error)
            return None
        self.listening = True
        return pubsub

    def _listen(self, pubsub: redis.client.PubSub, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=remaining)
            if message is None or message.get("type") != "message":
                continue
            parsed = notify.parse(message["data"])
            if parsed is None:
                self.wake_all()
            else:
                self.wake(*parsed)

    def _scan(self) -> None:
        with self._lock:
            idle = not any(self._waiters.values())
            cursor = self._cursor
        if idle or cursor is None:
            return
        with read_connection(self.database_url) as connection:
            rows = event_reads.entry_owners(connection, cursor.floor, SCAN_LIMIT)
        fresh = set(cursor.take(row.id for row in rows))
        for row in rows:
            if row.id in fresh:
                self.wake(row.job_id, row.owner)
