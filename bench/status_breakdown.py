#!/usr/bin/env python
"""Where the time of one status read (and one submission) goes, piece by piece.

Run from the repository root::

    .venv/bin/python bench/status_breakdown.py

It starts the same loopback stack as ``bench/api_load.py`` (a fresh PostgreSQL database, Redis
db 13, moto S3), builds the API in-process and, with Flask's test client (no HTTP server, one
thread, no contention), times each piece of ``GET /v1/jobs/<id>`` and ``POST /v1/jobs``: the
SQL statements they send, the pool's pre-ping, the JSON view, the Celery publish. It then times
the same request with fixes applied in-process only (monkeypatched here, the service code is not
changed), to show what each would buy. Every loop is bounded in count and time; everything is
cleaned up on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_load import DATASET, full_stack, log, run_cli  # noqa: E402


def timed(action: Callable[[], Any], count: int, budget_s: float) -> tuple[float, float, int]:
    """(median wall ms, mean CPU ms, calls) of ``action`` after a short warm-up."""
    for _ in range(min(20, count)):
        action()
    walls: list[float] = []
    cpu_start = time.process_time()
    deadline = time.monotonic() + budget_s
    while len(walls) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu_start) / max(1, len(walls))
    return statistics.median(walls) * 1000, cpu * 1000, len(walls)


@contextmanager
def counting(engine: Any) -> Iterator[list[str]]:
    """Collect the statements and transaction commands sent on ``engine`` meanwhile."""
    from sqlalchemy import event

    sent: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split())[:60])

    def on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            sent.append("BEGIN")  # an autocommit connection sends none

    def on_commit(_conn: Any) -> None:
        sent.append("COMMIT")

    def on_checkout(*_args: Any) -> None:
        sent.append("CHECKOUT")  # with pool_pre_ping, each checkout pings the server first

    hooks: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "begin", on_begin),
        (engine, "commit", on_commit),
        (engine.pool, "checkout", on_checkout),
    ]
    for target, name, hook in hooks:
        event.listen(target, name, hook)
    try:
        yield sent
    finally:
        for target, name, hook in hooks:
            event.remove(target, name, hook)


def describe(sent: list[str]) -> str:
    """'5 SQL, 1 checkout' and so on, from what ``counting`` collected."""
    sql = sum(1 for item in sent if item not in ("BEGIN", "COMMIT", "CHECKOUT"))
    checkouts = sent.count("CHECKOUT")
    return f"{sql} SQL, {checkouts} checkout{'s' if checkouts != 1 else ''}"


def make_finished_job(database_url: str, dataset_id: str, store: Any) -> str:
    """A succeeded job with the history, metrics and artifacts a real one has."""
    from shared.db.session import session_scope
    from shared.job_state import JobStatus
    from shared.jobs import NewJob, claim, create_job, finish, record_artifact, record_epoch
    from shared.storage import job_key

    with session_scope(database_url) as session:
        new = NewJob("autoencoder", "autoencoder", "", {}, dataset_id=dataset_id)
        job_id = create_job(session, new)
    with session_scope(database_url) as session:
        claimed = claim(session, job_id)
        assert claimed is not None and claimed.lease is not None
        lease = claimed.lease
    with session_scope(database_url) as session:
        values = {"loss": 0.05, "val_loss": 0.05, "psnr": 13.0}
        record_epoch(
            session, job_id, lease, step=1, values=values, seconds=1.0, progress=1.0,
            eta_seconds=0.0,
        )  # fmt: skip
        for name in ("samples/reconstructions.png", "model.keras"):
            stored = store.put_bytes(job_key(job_id, *name.split("/")), b"x" * 64, "image/png")
            record_artifact(session, job_id, lease, name, stored, "application/octet-stream")
        finish(session, job_id, lease, JobStatus.SUCCEEDED)
    return job_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="calls per piece (max 2000)")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis db to use and flush")
    args = parser.parse_args(argv)
    count = max(20, min(args.count, 2000))
    budget = 15.0  # seconds per piece at most

    rows: list[tuple[str, str, float, float]] = []

    def row(label: str, statements: str, action: Callable[[], Any]) -> None:
        wall, cpu, calls = timed(action, count, budget)
        rows.append((label, statements, wall, cpu))
        log(f"{label}: {wall:.2f} ms wall, {cpu:.2f} ms CPU ({calls} calls)")

    with full_stack(args.redis_db, keep=False) as stack:
        run_cli(stack, "db", "upgrade")
        os.environ.update(stack.env)
        from flask import g
        from sqlalchemy import func, select, text
        from sqlalchemy.orm import joinedload, selectinload

        import services.api.routes.jobs as jobs_routes
        import shared.db.session as db_session
        from services.api import create_app, job_reads
        from services.api.auth import Caller
        from services.api.views import job_view
        from shared.api_keys import create_key, verify_key
        from shared.db.models import Job, Metric, utcnow
        from shared.jobs import mark_enqueued as mark_job_enqueued
        from shared.queue import TRAIN_TASK, enqueue
        from shared.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        app = create_app(settings)
        client = app.test_client()
        with DATASET.open("rb") as handle:
            response = client.post(
                "/v1/datasets",
                data={"file": (handle, DATASET.name), "name": "mnist5k"},
                content_type="multipart/form-data",
            )
        assert response.status_code == 201, response.data
        url = stack.database_url
        engine = db_session.get_engine(url)
        dataset_id = (response.json or {})["id"]
        job_id = make_finished_job(url, dataset_id, app.extensions["gentrain.store"])
        path = f"/v1/jobs/{job_id}"
        body = {"kind": "autoencoder", "dataset": "mnist5k", "params": {"epochs": 1}}

        with counting(engine) as sent:
            assert client.get(path).status_code == 200
        get_statements = list(sent)
        with counting(engine) as sent:
            assert client.post("/v1/jobs", json=body).status_code == 202
        post_statements = list(sent)

        # The whole requests, as served (plus Flask's own floor), with and without API keys.
        _, secret = create_key(url, "bench", is_admin=True)
        keyed = {"Authorization": f"Bearer {secret}"}
        secured = create_app(settings.model_copy(update={"auth": "required"})).test_client()
        no_cache = settings.model_copy(update={"auth": "required", "api_key_cache_seconds": 0})
        uncached = create_app(no_cache).test_client()
        row("GET /healthz (Flask + test client floor)", "0", lambda: client.get("/healthz"))
        row("GET /v1/jobs/<id> as is", describe(get_statements), lambda: client.get(path))
        row("GET /v1/jobs/<id> with an API key (remembered)", describe(get_statements),
            lambda: secured.get(path, headers=keyed))  # fmt: skip
        row("GET /v1/jobs/<id> with an API key, key cache off", "+1 SQL, +1 connection",
            lambda: uncached.get(path, headers=keyed))  # fmt: skip
        row("POST /v1/jobs as is", describe(post_statements) + " + Redis",
            lambda: client.post("/v1/jobs", json=body))  # fmt: skip

        # The pieces, each on its own connection or session as the routes take them.
        context = app.test_request_context(path)
        context.push()
        g.caller = Caller(owner="", is_admin=True)

        def ping_only() -> None:
            with db_session.read_connection(url) as connection:
                connection.execute(text("SELECT 1"))

        def fetch() -> None:
            with db_session.read_connection(url) as connection:
                job_reads.fetch_job(connection, job_id)

        with db_session.read_connection(url) as connection:
            record = job_reads.fetch_job(connection, job_id)
        assert record is not None

        def serialise() -> None:
            json.dumps(job_view(record, "http://localhost/"))

        def rate_check() -> None:
            with db_session.session_scope(url) as session:
                jobs_routes._check_rate(session, "")

        def mark_enqueued() -> None:
            with db_session.session_scope(url) as session:
                mark_job_enqueued(session, job_id)

        row("read connection: checkout (pre-ping) + SELECT 1", "1 SQL, 1 connection", ping_only)
        row("GET piece: job_reads.fetch_job", "4 SQL, 1 connection", fetch)
        row("GET piece: job_view + json.dumps (no database)", "0", serialise)
        row("auth piece: verify_key (a cache miss)", "1 SQL, 1 connection",
            lambda: verify_key(url, secret))  # fmt: skip
        with db_session.session_scope(url) as session:
            since = utcnow() - timedelta(seconds=60)
            recent = session.scalar(
                select(func.count()).select_from(Job).where(Job.created_at >= since)
            )
        row(f"POST piece: _check_rate (counts the owner's {recent} jobs of the last minute)",
            "1 SQL, 1 session", rate_check)  # fmt: skip
        row("POST piece: enqueued_at update", "1 SQL, 1 session", mark_enqueued)
        celery = app.extensions["gentrain.celery"]
        row("POST piece: Celery publish to Redis", "Redis",
            lambda: enqueue(celery, TRAIN_TASK, "x"))  # fmt: skip
        context.pop()

        # Loading the view's rows three ways, interleaved round by round so that other load on
        # the machine hits them alike: the ORM loading the API used before (one session:
        # job + dataset joined, history and artifacts by selectin, the latest metric), the Core
        # reads it uses now, and a floor of one hand-written PostgreSQL round trip.
        def orm_load() -> None:
            with db_session.session_scope(url) as session:
                options = [
                    joinedload(Job.dataset),
                    selectinload(Job.events),
                    selectinload(Job.artifacts),
                ]
                session.get(Job, job_id, options=options)
                session.scalar(
                    select(Metric)
                    .where(Metric.job_id == job_id)
                    .order_by(Metric.step.desc())
                    .limit(1)
                )

        one_query = text(
            """
            SELECT row_to_json(j) FROM (
              SELECT jobs.*, datasets.name AS dataset,
                (SELECT json_agg(e ORDER BY e.id) FROM job_events e WHERE e.job_id = jobs.id)
                  AS history,
                (SELECT json_agg(a ORDER BY a.id) FROM artifacts a WHERE a.job_id = jobs.id)
                  AS artifacts,
                (SELECT row_to_json(m) FROM metrics m WHERE m.job_id = jobs.id
                  ORDER BY m.step DESC LIMIT 1) AS latest_metrics
              FROM jobs LEFT JOIN datasets ON datasets.id = jobs.dataset_id
              WHERE jobs.id = :id) j
            """
        )

        def one_round_trip() -> None:
            with db_session.read_connection(url) as connection:
                connection.execute(one_query, {"id": job_id}).scalar_one()

        variants: list[tuple[str, str, Callable[[], Any]]] = [
            ("load: ORM, as before (interleaved)", "4 SQL, 1 session", orm_load),
            ("load: Core job_reads.fetch_job, now (interleaved)", "4 SQL, 1 connection", fetch),
            ("load floor: one hand-written SQL round trip (interleaved)", "1 SQL, 1 connection",
             one_round_trip),
        ]  # fmt: skip
        walls: dict[str, list[float]] = {label: [] for label, *_ in variants}
        cpus: dict[str, float] = {label: 0.0 for label, *_ in variants}
        per_round = max(5, count // 10)
        deadline = time.monotonic() + 4 * budget
        for _ in range(20):
            for _, _, action in variants:
                action()  # warm
        for _round in range(10):
            for label, _work, action in variants:
                cpu_start = time.process_time()
                for _ in range(per_round):
                    started = time.perf_counter()
                    action()
                    walls[label].append(time.perf_counter() - started)
                cpus[label] += time.process_time() - cpu_start
            if time.monotonic() > deadline:
                break
        for label, work, _ in variants:
            wall = statistics.median(walls[label]) * 1000
            cpu = cpus[label] / len(walls[label]) * 1000
            rows.append((label, work, wall, cpu))
            log(f"{label}: {wall:.2f} ms wall, {cpu:.2f} ms CPU ({len(walls[label])} calls)")

    print(f"In-process, one thread, median of up to {count} calls each (Flask test client, "
          "no HTTP server; PostgreSQL on loopback).\n")  # fmt: skip
    print("| piece | database work | wall ms (median) | CPU ms (mean, this process) |")
    print("|---|---:|---:|---:|")
    for label, statements, wall, cpu in rows:
        print(f"| {label} | {statements} | {wall:.2f} | {cpu:.2f} |")
    print("\nStatements of one `GET /v1/jobs/<id>`: " + "; ".join(get_statements))
    print("\nStatements of one `POST /v1/jobs`: " + "; ".join(post_statements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
