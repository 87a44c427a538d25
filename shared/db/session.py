"""Engines and sessions, one engine per database URL per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """The engine for ``url``, created on first use."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A process frozen inside a transaction (SIGSTOP, a hung host) must not hold its row locks
    # for long: the reaper skips a locked job and a cancel waits for it. Every transaction of
    # the service lasts milliseconds (uploads happen outside them), so 15 s idle is a dead one.
    options = "-c idle_in_transaction_session_timeout=15000"
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"options": options}
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; the embedded mode has several processes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_connection(url: str) -> Iterator[Connection]:
    """A pooled connection for reads, in autocommit mode: no BEGIN and no COMMIT round trips.

    Nothing is lost by it: under PostgreSQL's READ COMMITTED every statement takes its own
    snapshot, inside a transaction or not. Do not write through it.
    """
    with get_engine(url).connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


def ping(url: str) -> None:
    """Run a trivial query; raises if the database is unreachable."""
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))


def dispose_engines() -> None:
    """Forget pooled connections (call in a child process after fork)."""
    for factory in (_session_factory,):
        factory.cache_clear()
    get_engine.cache_clear()
