"""Starting the service's processes: the API under gunicorn, Celery workers, and both at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from shared.queue import SAMPLE_QUEUE, TRAIN_QUEUE
from shared.settings import Settings


def api_command(settings: Settings, workers: int, threads: int, keep_alive: int = 0) -> list[str]:
    """The gunicorn command line serving the API: sync workers for one thread, else gthread.

    The API is CPU-bound Python, so sync workers (one request at a time per process, one per
    core) serve status reads fastest and with the shortest tail, ahead of gthread, whose threads
    queue for one interpreter lock (bench/api_load.py; figures in docs/benchmarks.md). Sync
    workers cannot keep a connection alive, and a slow client holds a whole process, hence the
    long timeout for big uploads; gthread tolerates slow clients. Its keep-alive is off by
    default: a gthread worker keeps the connections it accepted, so a few busy clients can all
    land on one process, which gets one core at most (status reads then dropped sharply in some
    runs: docs/benchmarks.md).
    """
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{settings.api_host}:{settings.api_port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--keep-alive", str(keep_alive),
        # gunicorn's 30 s would kill a sync worker still receiving a big upload from a slow client.
        "--timeout", "120",
        "--access-logfile", "-",
        "--graceful-timeout", "10",
        # gunicorn 27 puts a control socket in $HOME by default; several APIs on a host collide.
        "--no-control-socket",
        "services.api.wsgi:app",
    ]  # fmt: skip


def worker_command(
    settings: Settings, queues: Sequence[str], concurrency: int, name: str
) -> list[str]:
    """The Celery worker command line for ``queues``."""
    command = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "--queues", ",".join(queues),
        "--concurrency", str(concurrency),
        "--pool", "prefork",
        "--hostname", f"{name}@%h",
        "--loglevel", "INFO",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if settings.broker_url.startswith("filesystem://"):
        # The filesystem transport has no fanout exchange for remote control or heartbeats.
        command += ["--without-heartbeat"]
    return command


def reaper_command() -> list[str]:
    """The reaper's command line."""
    return [sys.executable, "-m", "services.cli.main", "reaper"]


def run_reaper_process(settings: Settings) -> None:
    """Run the reaper in this process until SIGTERM or Ctrl-C."""
    import logging

    from shared.queue import make_celery
    from workers.reaper import run_reaper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s reaper %(levelname)s %(message)s")

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        run_reaper(settings, make_celery(settings, name="gentrain-reaper"))


def run_all(settings: Settings, api_workers: int = 2) -> int:
    """Run the API and a training and a sampling worker until Ctrl-C or SIGTERM; stop them all."""
    env = os.environ.copy()
    children = [
        ("api", subprocess.Popen(api_command(settings, api_workers, 4), env=env)),
        (
            "worker-train",
            subprocess.Popen(worker_command(settings, [TRAIN_QUEUE], 1, "train"), env=env),
        ),
        (
            "worker-sample",
            subprocess.Popen(worker_command(settings, [SAMPLE_QUEUE], 1, "sample"), env=env),
        ),
        ("reaper", subprocess.Popen(reaper_command(), env=env)),
    ]
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    data_dir = settings.data_dir.resolve()
    print(f"gentrain is up at {settings.api_url}  (data in {data_dir}; Ctrl-C stops)", flush=True)
    exit_code = 0
    while not stopping:
        for name, child in children:
            if child.poll() is not None:
                print(f"gentrain: {name} exited with {child.returncode}; stopping", file=sys.stderr)
                exit_code = 1
                stopping = True
        time.sleep(0.2)
    for _name, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _name, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("gentrain stopped", flush=True)
    return exit_code
