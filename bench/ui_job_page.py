#!/usr/bin/env python
"""Server render time and weight of the dashboard's job page of a finished 2,000-step GAN (and
of a compare page of two of them), on PostgreSQL.

Run from the repository root::

    .venv/bin/python bench/ui_job_page.py [--count 200]

It creates a fresh PostgreSQL database on loopback (dropped on the way out), writes two
finished 2,000-step GANs through ``shared.jobs`` as a worker writes them (20 metrics rows, 4
grids, the final grid, checkpoint, model, TensorBoard file, log lines, results), builds the API
in-process and times ``GET /ui/jobs/<id>`` with Flask's test client (no HTTP server, one thread):
the median wall time, the SQL statements one render sends, and the page weight: its HTML and
every script and style it loads from ``/ui/static``, raw and gzipped. Target (issue 12): median
under 100 ms; page weight with scripts and styles under 300 KB.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("GENTRAIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def median_ms(action: Callable[[], Any], count: int) -> float:
    """Median wall time of ``action`` in ms, after a short warm-up."""
    for _ in range(10):
        action()
    walls = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000


def weight(client: Any, html: str) -> tuple[int, int]:
    """Bytes of the page and of each script and style it loads from /ui/static: raw, gzipped."""
    raw, packed = len(html.encode()), len(gzip.compress(html.encode()))
    for path in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html):
        body = client.get(path).get_data()
        raw += len(body)
        packed += len(gzip.compress(body))
    return raw, packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="renders timed per page")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import event

    from services.api import create_app
    from shared.db.migrate import upgrade
    from shared.db.session import get_engine
    from shared.settings import Settings
    from tests.services.ui.written_jobs import finished_gan

    name = f"gentrain_bench_ui_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp) / "data", database_url=url)
            gans = [finished_gan(url, steps=2000) for _ in range(2)]
            app = create_app(settings)
            client = app.test_client()
            pages = {
                "job page, finished 2,000-step GAN": f"/ui/jobs/{gans[0]}",
                "compare page, two of them": f"/ui/compare?jobs={gans[0]},{gans[1]}",
            }
            sent: list[str] = []
            event.listen(get_engine(url), "before_cursor_execute", lambda *a: sent.append(a[2]))
            print("| page | median ms | SQL statements | HTML KB | with scripts and styles KB "
                  "(gzipped) |")  # fmt: skip
            print("|---|---|---|---|---|")
            for label, path in pages.items():
                response = client.get(path)
                assert response.status_code == 200, response.status_code
                html = response.get_data(as_text=True)
                sent.clear()
                client.get(path)
                statements = len(sent)
                ms = median_ms(lambda path=path: client.get(path), args.count)  # type: ignore[misc]
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
