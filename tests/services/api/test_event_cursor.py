"""The cross-job cursor: ids that commit out of order are delivered once each, a hole is waited
for and then given up on, and a resume token names exactly what was delivered."""

from __future__ import annotations

import threading

import pytest
from flask.testing import FlaskClient

from services.api import create_app
from services.api.event_cursor import GAP_GRACE_SECONDS, CrossJobCursor, CursorError
from shared.db.models import Job
from shared.db.session import session_scope
from shared.jobs import NewJob, create_job
from shared.settings import Settings
from tests.services.api.test_event_stream import stream


def test_ids_in_order_move_the_floor() -> None:
    cursor = CrossJobCursor(0)
    assert cursor.take([1, 2, 3], now=0) == [1, 2, 3]
    assert cursor.floor == 3 and cursor.token() == "3" and not cursor.waiting
    assert cursor.take([2, 3, 4], now=0) == [4]


def test_a_late_id_is_delivered_once_and_the_token_says_what_was_sent() -> None:
    cursor = CrossJobCursor(9)
    assert cursor.take([11, 12], now=0) == [11, 12]
    cursor.delivered(11)
    assert cursor.floor == 9 and cursor.waiting
    assert cursor.token() == "9:11"
    assert cursor.take([10, 11, 12], now=1) == [10]
    assert cursor.floor == 12 and cursor.token() == "12" and not cursor.waiting


def test_a_hole_is_given_up_on_after_the_grace_period() -> None:
    cursor = CrossJobCursor(0)
    cursor.take([1, 3], now=0)
    assert cursor.floor == 1
    cursor.take([], now=GAP_GRACE_SECONDS - 1)
    assert cursor.floor == 1
    cursor.take([], now=GAP_GRACE_SECONDS)
    assert cursor.floor == 3 and not cursor.waiting


def test_a_resumed_cursor_skips_what_its_token_names() -> None:
    resumed = CrossJobCursor.parse("9:11,12")
    assert resumed.take([10, 11, 12, 13], now=0) == [10, 13]
    assert resumed.floor == 13


@pytest.mark.parametrize("token", ["x", "-1", "3:a", "1:" + ",".join(["5"] * 20_000)])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(CursorError):
        CrossJobCursor.parse(token)


def test_a_list_stream_delivers_an_entry_committed_after_a_later_one(pg_database: str) -> None:
    """PostgreSQL: a transaction takes an id, a second takes the next and commits first; the
    stream sends the second at once and the first when it commits, and a client resuming from
    between them gets the first and not the second again."""
    settings = Settings(
        database_url=pg_database, event_poll_seconds=0.05, event_keepalive_seconds=1
    )
    client: FlaskClient = create_app(settings).test_client()
    inserted, release = threading.Event(), threading.Event()
    slow_id: list[str] = []

    def slow_creator() -> None:
        with session_scope(pg_database) as session:
            slow_id.append(create_job(session, NewJob("gan", "gan", "", {})))
            inserted.set()
            release.wait(10)

    slow = threading.Thread(target=slow_creator)
    slow.start()
    assert inserted.wait(10)
    fast_id = create_job_now(pg_database)
    events = stream(client, "/v1/events")
    first = next(events)
    assert first.data["job_id"] == fast_id
    release.set()
    slow.join()
    second = next(events)
    assert second.data["job_id"] == slow_id[0]
    assert int(second.id.split(":")[0]) > int(first.id.split(":")[0])
    resumed = next(stream(client, "/v1/events", **{"Last-Event-ID": first.id}))
    assert resumed.data["job_id"] == slow_id[0] and resumed.id == second.id
    with session_scope(pg_database) as session:
        assert session.get(Job, slow_id[0]) is not None


def create_job_now(url: str) -> str:
    with session_scope(url) as session:
        return create_job(session, NewJob("autoencoder", "autoencoder", "", {}))


def test_a_hole_below_an_old_entry_is_settled_at_once() -> None:
    """Replaying an old log: an id missing below entries written long ago was rolled back."""
    cursor = CrossJobCursor(0)
    assert cursor.take([1, 3, 4], now=0, old=True) == [1, 3, 4]
    assert cursor.floor == 4 and not cursor.waiting
    fresh = CrossJobCursor(4)
    fresh.take([6], now=0, old=False)
    assert fresh.floor == 4 and fresh.waiting
