#!/usr/bin/env python
"""Server render time and weight of the dashboard's jobs page with 10,000 jobs in PostgreSQL.

Run from the repository root::

    .venv/bin/python bench/ui_jobs_page.py [--jobs 10000] [--count 200]

It creates a fresh PostgreSQL database on loopback (dropped on the way out), inserts ``--jobs``
finished GAN and autoencoder jobs (with results, one change-log entry each) for one owner and
as many for another, builds the API in-process with keys required and times ``GET /ui/``, the
first page and a filtered later page, with Flask's test client (no HTTP server, one thread), as
the owner (a Bearer key: the key is checked once, then cached, as in production) and as an
admin (every owner's jobs: the widest count). It prints the median wall time, the SQL
statements one render sends and the page weight with every script and style it loads. Target
(issue 12): median under 100 ms; page weight under 300 KB.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ui_job_page import median_ms, weight  # noqa: E402

PG_ADMIN = os.environ.get("GENTRAIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def fill(url: str, owners: list[str], count: int) -> None:
    """``count`` finished jobs per owner, newest last, in a few multi-row inserts."""
    from sqlalchemy import insert

    from services.api.job_reads import EVENTS, JOBS
    from shared.db.session import get_engine

    rng = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jobs, events = [], []
    for owner in owners:
        for index in range(count):
            gan = index % 2 == 0
            created = start + timedelta(seconds=index)
            job_id = uuid.uuid4().hex
            results = (
                {"fid": rng.uniform(20, 90), "digit_shares": {str(d): 0.1 for d in range(10)}}
                if gan
                else {"x_test_mse": rng.uniform(0.01, 0.05), "x_test_psnr_db": 18.0}
            )
            jobs.append(
                {
                    "id": job_id,
                    "kind": "gan" if gan else "autoencoder",
                    "model_kind": "gan" if gan else "autoencoder",
                    "owner": owner,
                    "params": {"epochs": 2},
                    "status": "succeeded",
                    "attempts": 1,
                    "progress": 1.0,
                    "results": results,
                    "created_at": created,
                    "started_at": created + timedelta(seconds=1),
                    "finished_at": created + timedelta(seconds=60),
                    "updated_at": created + timedelta(seconds=60),
                    "drain_requested": False,
                }
            )
            events.append(
                {"job_id": job_id, "type": "status", "status": "succeeded", "at": created}
            )
    with get_engine(url).begin() as connection:
        for first in range(0, len(jobs), 2000):
            connection.execute(insert(JOBS), jobs[first : first + 2000])
            connection.execute(insert(EVENTS), events[first : first + 2000])
        connection.exec_driver_sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per owner")
    parser.add_argument("--count", type=int, default=200, help="renders timed per page")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import event

    from services.api import create_app
    from shared.api_keys import create_key
    from shared.db.migrate import upgrade
    from shared.db.session import get_engine
    from shared.settings import Settings

    name = f"gentrain_bench_jobs_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        upgrade(url)
        fill(url, ["alice", "bob"], args.jobs)
        _, alice = create_key(url, "alice")
        _, root = create_key(url, "root", is_admin=True)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp) / "data", database_url=url, auth="required")
            client = create_app(settings).test_client()
            cases = {
                f"owner, {args.jobs:,} jobs: first page": ("/ui/", alice),
                "owner: page 100 of kind gan": ("/ui/?kind=gan&page=100", alice),
                f"admin, {2 * args.jobs:,} jobs: first page": ("/ui/", root),
            }
            sent: list[str] = []
            event.listen(get_engine(url), "before_cursor_execute", lambda *a: sent.append(a[2]))
            print("| page | median ms | SQL statements | HTML KB | with scripts and styles KB "
                  "(gzipped) |")  # fmt: skip
            print("|---|---|---|---|---|")
            for label, (path, key) in cases.items():
                headers = {"Authorization": f"Bearer {key}"}
                response = client.get(path, headers=headers)
                assert response.status_code == 200, response.status_code
                html = response.get_data(as_text=True)
                sent.clear()
                client.get(path, headers=headers)
                statements = len(sent)

                def render(path: str = path, headers: dict[str, str] = headers) -> None:
                    client.get(path, headers=headers)

                ms = median_ms(render, args.count)
                raw, packed = weight(client, html)
                print(
                    f"| {label} | {ms:.1f} | {statements} | {len(html.encode()) / 1024:.1f} | "
                    f"{raw / 1024:.1f} ({packed / 1024:.1f}) |"
                )
            get_engine(url).dispose()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
