#!/usr/bin/env python
"""Benchmark of the Prometheus metrics (issue 13) on the full stack: PostgreSQL, Redis, S3.

Run from the repository root::

    .venv/bin/python bench/metrics_scrape.py

In one run it fills a fresh PostgreSQL database with ``--jobs`` jobs (10,000: most ended, some
queued, a few running; three artifacts and a metrics row per ended job, their change log; 20
owners with a dataset each), starts the API as ``gentrain api`` (2 gevent workers, as deployed)
and measures:

1. ``GET /metrics``: sequential scrapes from loopback, latency p50/p99/max as the client sees it
   (an upper bound of the server's time) and ``gentrain_metrics_collect_seconds``, the time the
   scrape spent on the database and the broker as the API measured it;
2. status reads ``GET /v1/jobs/<id>`` (wrk) with the request-metrics middleware and without it,
   the same code otherwise (two exports of HEAD, one whose app factory skips
   ``register_request_metrics``), interleaved over ``--rounds`` rounds, each first in turn,
   each after waiting (within ``--quiet-wait`` in all) for other work on the machine to stop.

Targets: a scrape under 50 ms on the server; status reads with the middleware within 5 % of
those without. Everything started is stopped and the database dropped, even on failure.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import Table, insert  # noqa: E402

from bench.api_load import (  # noqa: E402
    GENTRAIN,
    LOOPBACK,
    LoadResult,
    QuietWaiter,
    Stack,
    background_busy,
    busy_percent,
    cpu_times,
    free_port,
    full_stack,
    log,
    processes_cpu_seconds,
    wait_http,
    wrk_load,
)
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.models import Artifact, Dataset, Job, JobEvent, Metric  # noqa: E402
from shared.db.session import get_engine  # noqa: E402

TARGET_SCRAPE_MS = 50.0
TARGET_READS_RATIO = 0.95
REGISTRATION = "    register_request_metrics(app)"


def table(model: Any) -> Table:
    return cast(Table, model.__table__)


def populate(database_url: str, jobs: int, seed: int = 13) -> str:
    """``jobs`` jobs in the database; returns the id of a succeeded one to poll."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    owners = [f"owner{i:02d}" for i in range(20)]
    datasets = [
        {
            "id": uuid.uuid4().hex, "name": "mnist", "owner": owner, "storage_key": f"d/{owner}",
            "size_bytes": 3_000_000 + i, "sha256": "0" * 64, "arrays": {}, "created_at": now,
        }
        for i, owner in enumerate(owners)
    ]  # fmt: skip
    rows, artifacts, metrics, events = [], [], [], []
    kinds = ("autoencoder", "denoiser", "classifier", "gan", "sample")
    for i in range(jobs):
        status = (
            "queued" if i % 50 == 0
            else "running" if i % 2500 == 1
            else rng.choice(("succeeded",) * 8 + ("failed", "cancelled"))
        )  # fmt: skip
        kind = kinds[i % len(kinds)]
        created = now - timedelta(seconds=jobs - i)
        job_id = uuid.uuid4().hex
        ended = status in ("succeeded", "failed", "cancelled")
        rows.append({
            "id": job_id, "kind": kind, "model_kind": "gan" if kind == "sample" else kind,
            "owner": owners[i % len(owners)], "params": {"epochs": 2}, "status": status,
            "attempts": 0 if status == "queued" else 1, "progress": 1.0 if ended else 0.5,
            "results": {}, "created_at": created, "updated_at": created,
            "started_at": None if status == "queued" else created,
            "finished_at": created if ended else None,
            "heartbeat_at": now if status == "running" else None,
            "worker": "train@bench" if status == "running" else None,
            "drain_requested": False, "priority": 5,
        })  # fmt: skip
        events.append({"job_id": job_id, "type": "status", "status": "queued", "at": created})
        if ended:
            for name, size in (("model.keras", 220_000), ("checkpoints/latest.npz", 640_000),
                               ("samples/grid.png", 9_000)):  # fmt: skip
                artifacts.append({
                    "job_id": job_id, "name": name, "storage_key": f"jobs/{job_id}/{name}",
                    "size_bytes": size, "content_type": "application/octet-stream",
                    "sha256": "0" * 64, "created_at": created,
                })  # fmt: skip
            metrics.append({"job_id": job_id, "step": 1, "attempt": 1,
                            "values": {"loss": 0.1}, "seconds": 1.0, "at": created})  # fmt: skip
            events.append({"job_id": job_id, "type": "status", "status": status, "at": created})
    engine = get_engine(database_url)
    with engine.begin() as connection:
        connection.execute(insert(table(Dataset)), datasets)
        for model, batch in ((Job, rows), (Artifact, artifacts), (Metric, metrics),
                             (JobEvent, events)):  # fmt: skip
            for start in range(0, len(batch), 5000):
                connection.execute(insert(table(model)), batch[start : start + 5000])
    log(f"{len(rows)} jobs, {len(artifacts)} artifacts, {len(events)} change-log entries")
    return next(row["id"] for row in rows if row["status"] == "succeeded")


def export_head(stack: Stack, middleware: bool) -> Path:
    """HEAD's services, shared and workers (both sides run committed code, never the working
    tree's edits), with or without the request-metrics middleware."""
    target = stack.work_dir / ("with-middleware" if middleware else "without-middleware")
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD", "services", "shared", "workers"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    if middleware:
        return target
    factory = target / "services/api/__init__.py"
    text = factory.read_text()
    if REGISTRATION not in text:
        raise RuntimeError("services/api/__init__.py no longer registers the metrics middleware")
    factory.write_text(text.replace(REGISTRATION, "    pass  # bench: no request metrics"))
    return target


def start_api(stack: Stack, name: str, code: Path) -> tuple[Any, str]:
    port = free_port()
    # PYTHONPATH and the working directory put the exported code before the editable install.
    env = {"GENTRAIN_AUTH": "off", "PYTHONPATH": str(code)}
    command, cwd = [str(GENTRAIN.parent / "python"), "-m", "services.cli.main"], code
    api = stack.start(
        name, [*command, "api", "--host", LOOPBACK, "--port", str(port), "--workers", "2"],
        env=env, cwd=cwd,
    )  # fmt: skip
    base = f"http://{LOOPBACK}:{port}"
    wait_http(f"{base}/healthz", api, timeout=60)
    return api, base


def measure_scrapes(base: str, count: int) -> dict[str, float]:
    session = requests.Session()
    for _ in range(5):  # both gunicorn processes: imports, pools, compiled statements
        session.get(f"{base}/metrics", timeout=10).raise_for_status()
    took, collected, sizes = [], [], []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(f"{base}/metrics", timeout=10)
        took.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        sizes.append(len(response.content))
        found = re.search(r"^gentrain_metrics_collect_seconds (\S+)$", response.text, re.M)
        assert found is not None
        collected.append(float(found.group(1)) * 1000)
    took.sort()
    collected.sort()
    return {
        "p50_ms": statistics.median(took),
        "p99_ms": took[min(len(took) - 1, int(len(took) * 0.99))],
        "max_ms": took[-1],
        "collect_p50_ms": statistics.median(collected),
        "collect_max_ms": collected[-1],
        "bytes": statistics.median(sizes),
    }


def measure_storage_read(database_url: str, count: int = 20) -> dict[str, float]:
    """The statements a scrape runs once a minute per API process (storage per owner)."""
    from services.api.metrics_reads import _ARTIFACT_BYTES, _DATASET_BYTES
    from shared.db.session import read_connection

    took = []
    with read_connection(database_url) as connection:
        for _ in range(count):
            started = time.perf_counter()
            connection.execute(_DATASET_BYTES).all()
            connection.execute(_ARTIFACT_BYTES).all()
            took.append((time.perf_counter() - started) * 1000)
    get_engine(database_url).dispose()
    return {"storage_p50_ms": statistics.median(took), "storage_max_ms": max(took)}


def measure_reads(stack: Stack, api: Any, url: str, args: argparse.Namespace) -> LoadResult:
    wrk_load(url, "GET", None, {}, args.connections, args.warmup, stack.work_dir)
    machine = cpu_times()
    server = processes_cpu_seconds(pgid=api.pid)
    run = wrk_load(url, "GET", None, {}, args.connections, args.duration, stack.work_dir)
    run.cpu_busy_pct = round(busy_percent(machine, cpu_times()), 1)
    run.api_cpu_ms = round(
        (processes_cpu_seconds(pgid=api.pid) - server) / max(1, run.requests) * 1000, 3
    )
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument(
        "--quiet-wait", type=float, default=120.0, help="seconds, in all, to wait for other "
        "work on the machine to stop before the measurements",
    )  # fmt: skip
    args = parser.parse_args()
    log(f"machine busy before the run: {background_busy():.0f}%")
    quiet = QuietWaiter(args.quiet_wait)
    with full_stack(args.redis_db, keep=False) as stack:
        upgrade(stack.database_url)
        poll_job = populate(stack.database_url, args.jobs)
        get_engine(stack.database_url).dispose()
        stack.vacuum()
        code = {"with": export_head(stack, True), "without": export_head(stack, False)}

        quiet.wait("the scrapes")
        api, base = start_api(stack, "api-metrics", code["with"])
        scrape = measure_scrapes(base, args.scrapes) | measure_storage_read(stack.database_url)
        log(f"scrape: {scrape}")
        stack.stop(api)

        reads: dict[str, list[LoadResult]] = {"with": [], "without": []}
        for round_number in range(args.rounds):
            order = ["with", "without"] if round_number % 2 == 0 else ["without", "with"]
            for which in order:
                api, base = start_api(stack, f"api-{which}-{round_number}", code[which])
                quiet.wait(f"round {round_number + 1} {which}")
                run = measure_reads(stack, api, f"{base}/v1/jobs/{poll_job}", args)
                reads[which].append(run)
                log(f"round {round_number + 1} {which}: {run.rps:.0f} reads/s, "
                    f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, {run.errors} errors, "
                    f"API {run.api_cpu_ms} ms CPU/read, {run.cpu_busy_pct}% busy")  # fmt: skip
                stack.stop(api)

    print(f"\n**1. `GET /metrics` with {args.jobs:,} jobs** ({args.scrapes} sequential scrapes)\n")
    print("| client p50 ms | client p99 ms | max ms | collect p50 ms | collect max ms | bytes "
          "| storage read p50 / max ms (once a minute) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {scrape['p50_ms']:.1f} | {scrape['p99_ms']:.1f} | {scrape['max_ms']:.1f} | "
          f"{scrape['collect_p50_ms']:.1f} | {scrape['collect_max_ms']:.1f} | "
          f"{scrape['bytes']:,.0f} | {scrape['storage_p50_ms']:.1f} / "
          f"{scrape['storage_max_ms']:.1f} |")  # fmt: skip
    print("\n**2. Status reads with and without the request-metrics middleware**\n")
    print("| round | middleware | reads/s | p50 ms | p99 ms | API CPU ms/read | machine busy % |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for round_number in range(args.rounds):
        for which in ("with", "without"):
            run = reads[which][round_number]
            print(f"| {round_number + 1} | {which} | {run.rps:.0f} | {run.p50_ms:.1f} | "
                  f"{run.p99_ms:.1f} | {run.api_cpu_ms} | {run.cpu_busy_pct} |")  # fmt: skip
    total = {which: sum(r.requests for r in runs) / sum(r.seconds for r in runs)
             for which, runs in reads.items()}  # fmt: skip
    ratio = total["with"] / total["without"]
    per_round = [w.rps / o.rps for w, o in zip(reads["with"], reads["without"], strict=True)]
    print(f"\nRatio with / without per round: {', '.join(f'{r:.3f}' for r in per_round)} "
          f"(median {statistics.median(per_round):.3f})")  # fmt: skip
    print(f"\nAll rounds: {total['with']:.0f} reads/s with, {total['without']:.0f} without: "
          f"ratio {ratio:.3f} (target ≥ {TARGET_READS_RATIO}); scrape p99 "
          f"{scrape['p99_ms']:.1f} ms (target < {TARGET_SCRAPE_MS:.0f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
