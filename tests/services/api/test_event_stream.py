"""Event streams in-process, on SQLite and on PostgreSQL with Redis: a job's stream replays and
follows a job that a writer moves through its life (through ``shared.jobs``, as a worker does),
resumes from Last-Event-ID, and the job list's stream shows jobs appear and change."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event as sa_event

from services.api import create_app
from services.api.event_recent import RecentEntries
from shared.api_keys import create_key
from shared.db.session import get_engine, session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_artifact, record_epoch
from shared.settings import Settings
from shared.storage import StoredObject
from tests.conftest import create_test_job


@dataclass(frozen=True)
class Event:
    id: str | None
    type: str
    data: dict[str, Any]


def read_events(chunks: Iterator[bytes]) -> Iterator[Event]:
    """Parse a text/event-stream body as it arrives (comments and retry lines skipped)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":") or ":" not in line:
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            if "data" in fields:
                yield Event(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )


def stream(client: FlaskClient, path: str, **headers: str) -> Iterator[Event]:
    response = client.get(path, headers=headers, buffered=False)
    assert response.status_code == 200, response.get_data()
    assert response.mimetype == "text/event-stream"
    return read_events(iter(response.response))


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"event_poll_seconds": 0.05, "event_keepalive_seconds": 1.0})


@pytest.fixture
def app(fast: Settings) -> Flask:
    return create_app(fast)


def run_job(url: str, job_id: str, epochs: int, start: threading.Event | None = None) -> None:
    """Move a queued job through a whole training run, as a worker's writes do."""
    with session_scope(url) as session:
        job = claim(session, job_id, "w1@test")
        assert job is not None and job.lease is not None
        lease = job.lease
    for step in range(1, epochs + 1):
        if start is not None and step == 3:
            start.wait(10)
        with session_scope(url) as session:
            record_epoch(
                session,
                job_id,
                lease,
                step=step,
                values={"loss": 1.0 / step},
                seconds=0.1,
                progress=step / epochs,
                eta_seconds=float(epochs - step),
            )
    with session_scope(url) as session:
        stored = StoredObject(key=f"jobs/{job_id}/samples/grid.png", size=10, sha256="0" * 64)
        record_artifact(session, job_id, lease, "samples/grid.png", stored, "image/png")
    with session_scope(url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, results={"test_mse": 0.03})


def test_a_job_stream_replays_follows_and_ends(client: FlaskClient, fast: Settings) -> None:
    job_id = create_test_job(fast.database_url)
    halfway = threading.Event()
    writer = threading.Thread(target=run_job, args=(fast.database_url, job_id, 5, halfway))
    writer.start()
    events = []
    for event in stream(client, f"/v1/jobs/{job_id}/events"):
        events.append(event)
        if event.type == "metrics" and event.data["step"] == 2:
            halfway.set()  # the rest is written while the stream is open
    writer.join()
    halfway.set()
    steps = [event.data["step"] for event in events if event.type == "metrics"]
    assert steps == [1, 2, 3, 4, 5]
    statuses = [event.data["status"] for event in events if event.type == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert events[-1].type == "status" and events[-1].data["results"] == {"test_mse": 0.03}
    (artifact,) = [event for event in events if event.type == "artifact"]
    assert artifact.data["url"].endswith(f"/v1/jobs/{job_id}/artifacts/samples/grid.png")
    progress = [event.data["progress"] for event in events if event.type == "progress"]
    assert progress == [0.2, 0.4, 0.6, 0.8, 1.0]
    ids = [int(event.id) for event in events if event.id]
    assert len(ids) == len(events) and ids == sorted(set(ids))


def test_a_reconnecting_client_gets_exactly_the_rest(client: FlaskClient, fast: Settings) -> None:
    job_id = create_test_job(fast.database_url)
    run_job(fast.database_url, job_id, 4)
    whole = list(stream(client, f"/v1/jobs/{job_id}/events"))
    first = []
    for event in stream(client, f"/v1/jobs/{job_id}/events"):
        first.append(event)
        if event.type == "metrics" and event.data["step"] == 2:
            break  # the client drops here
    rest = list(stream(client, f"/v1/jobs/{job_id}/events", **{"Last-Event-ID": first[-1].id}))
    assert [e.id for e in first + rest] == [e.id for e in whole]
    # Resuming after the terminal status ends at once.
    assert list(stream(client, f"/v1/jobs/{job_id}/events?last_event_id={whole[-1].id}")) == []


def test_log_lines_only_when_asked(client: FlaskClient, fast: Settings) -> None:
    job_id = create_test_job(fast.database_url)
    run_job(fast.database_url, job_id, 1)
    assert "log" not in {event.type for event in stream(client, f"/v1/jobs/{job_id}/events")}
    response = client.get(f"/v1/jobs/{job_id}/events?logs=maybe")
    assert response.status_code == 422 and response.json["error"]["field"] == "logs"
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x1"})
    assert response.status_code == 422 and response.json["error"]["field"] == "Last-Event-ID"
    assert client.get("/v1/jobs/nope/events").status_code == 404


def test_the_list_stream_shows_jobs_appear_and_change(client: FlaskClient, fast: Settings) -> None:
    done = create_test_job(fast.database_url)
    run_job(fast.database_url, done, 2)
    events = stream(client, "/v1/events")
    replayed = []
    for event in events:
        replayed.append(event)
        if event.data.get("status") == "succeeded":
            break
    assert [e.data["status"] for e in replayed if e.type == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    fresh = create_test_job(fast.database_url)
    writer = threading.Thread(target=run_job, args=(fast.database_url, fresh, 2))
    writer.start()
    seen = []
    for event in events:
        seen.append(event)
        if event.data.get("status") == "succeeded":
            break
    writer.join()
    assert {event.data["job_id"] for event in seen} == {fresh}
    assert [e.data["status"] for e in seen if e.type == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert seen[0].data["kind"] == "autoencoder"
    # Resuming from the middle of the replay gives exactly what followed it, once.
    resumed = stream(client, "/v1/events", **{"Last-Event-ID": replayed[1].id})
    rest = [next(resumed) for _ in range(len(replayed) - 2 + len(seen))]
    assert [e.id for e in rest] == [e.id for e in replayed[2:] + seen]


def test_another_owners_job_stream_is_404(fast: Settings) -> None:
    secured = fast.model_copy(update={"auth": "required"})
    client = create_app(secured).test_client()
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    job_id = create_test_job(secured.database_url, owner="alice")
    run_job(secured.database_url, job_id, 1)
    as_bob = {"Authorization": f"Bearer {bob}"}
    assert client.get(f"/v1/jobs/{job_id}/events", headers=as_bob).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/events").status_code == 401
    as_alice = {"Authorization": f"Bearer {alice}"}
    assert len(list(stream(client, f"/v1/jobs/{job_id}/events", **as_alice))) > 3
    # Bob's list stream shows none of Alice's jobs: his first event is his own new job.
    bobs = create_test_job(secured.database_url, owner="bob")
    first = next(stream(client, "/v1/events", **as_bob))
    assert first.data["job_id"] == bobs


def follow_all(streams: list[Iterator[Event]]) -> list[list[Event]]:
    """Read each stream to its end, all at once (one thread each)."""
    received: list[list[Event]] = [[] for _ in streams]

    def read(index: int) -> None:
        received[index].extend(streams[index])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return received


def test_streams_of_one_job_share_the_process_reads(app: Flask, fast: Settings) -> None:
    client = app.test_client()
    job_id = create_test_job(fast.database_url)
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "WHERE job_events.job_id =" in statement:  # one stream's own read of its job
            reads.append(statement)

    engine = get_engine(fast.database_url)
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        streams = [stream(client, f"/v1/jobs/{job_id}/events") for _ in range(4)]
        for each in streams:
            assert next(each).data["status"] == "queued"  # replayed: each has read once
        replays = len(reads)
        run_job(fast.database_url, job_id, 6)
        received = follow_all(streams)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    for events in received:
        assert [e.data["step"] for e in events if e.type == "metrics"] == [1, 2, 3, 4, 5, 6]
        assert events[-1].data["status"] == "succeeded"
    # Following, they took the 6 epochs, artifact and end from the window the process's watcher
    # reads once: no stream read its job again (each would have read ~9 times without it).
    assert replays == 4
    assert len(reads) == replays


def test_a_stream_the_window_left_behind_reads_the_database_again(
    app: Flask, fast: Settings
) -> None:
    client = app.test_client()
    wakeups = app.extensions["gentrain.wakeups"]
    wakeups.recent = RecentEntries(capacity=2)  # drops entries before slow streams see them
    job_id = create_test_job(fast.database_url)
    listed = stream(client, "/v1/events")
    job = stream(client, f"/v1/jobs/{job_id}/events")
    assert next(job).data["status"] == "queued"
    assert next(listed).data["status"] == "queued"
    run_job(fast.database_url, job_id, 8)  # 8 epochs, 2 entries each, before either reads on
    events = list(job)
    assert [e.data["step"] for e in events if e.type == "metrics"] == list(range(1, 9))
    ids = [int(e.id) for e in events if e.id]
    assert ids == sorted(set(ids))
    seen = []
    for each in listed:
        seen.append(each)
        if each.data.get("status") == "succeeded":
            break
    assert [e.data["progress"] for e in seen if e.type == "progress"] == [
        step / 8 for step in range(1, 9)
    ]
