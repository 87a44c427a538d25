"""Starting the service's processes: the API under gunicorn, Celery workers, and both at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from shared.queue import SAMPLE_QUEUE, TRAIN_QUEUE
from shared.settings import Settings

# gunicorn's default access line with the request's id at the end.
ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)


def api_command(
    settings: Settings, workers: int, threads: int = 1, keep_alive: int = 0
) -> list[str]:
    """The gunicorn command line serving the API: gevent workers, or gthread for ``threads`` > 1.

    gevent (``services.gunicorn_worker.ApiWorker``) gives each connection a greenlet, so a slow
    client (or, later, a long-lived event stream) holds a few kilobytes, not a process or a
    thread; the worker closes a connection whose request line and headers take longer than
    ``header_timeout_seconds`` or that stalls for ``client_idle_timeout_seconds``, and serves at
    most ``api_connections`` at once. That costs some speed: a little fewer status reads
    than sync workers give (figures in docs/benchmarks.md). gthread is kept only for
    comparison: each of its threads can be held by one slow client. Keep-alive is off by
    default: a process keeps the connections it accepted, so a few busy clients could all land
    on one process, which gets one core at most.
    """
    worker_class = "gthread" if threads > 1 else "services.gunicorn_worker.ApiWorker"
    # The request id in each access line; as JSON lines with GENTRAIN_LOG_FORMAT=json.
    logging = ["--access-logformat", ACCESS_LOG_FORMAT]
    if settings.log_format == "json":
        logging = ["--logger-class", "services.gunicorn_logging.JsonLogger"]
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{settings.api_host}:{settings.api_port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", worker_class,
        "--worker-connections", str(settings.api_connections),
        "--keep-alive", str(keep_alive),
        # A worker whose event loop is blocked this long (a request burning CPU) is restarted.
        "--timeout", "120",
        "--access-logfile", "-", *logging,
        "--graceful-timeout", "10",
        # gunicorn 27 puts a control socket in $HOME by default; several APIs on a host collide.
        "--no-control-socket",
        "services.api.wsgi:app",
    ]  # fmt: skip


def api_environment(settings: Settings) -> dict[str, str]:
    """The environment of the API's processes: this one's, plus the serving deadlines (the
    gunicorn worker reads them before it may import the settings module)."""
    env = os.environ.copy()
    env["GENTRAIN_HEADER_TIMEOUT_SECONDS"] = str(settings.header_timeout_seconds)
    env["GENTRAIN_CLIENT_IDLE_TIMEOUT_SECONDS"] = str(settings.client_idle_timeout_seconds)
    # Each gunicorn process counts its requests into files here; /metrics sums them all
    # (services/api/metrics.py). Emptied at each start: old counts are not this run's.
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = settings.data_dir.resolve() / "metrics" / f"api-{settings.api_port}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return env


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
    if settings.log_format == "json":
        # No start-up banner: it is printed, not logged as a JSON line (a global option).
        command.insert(command.index("-A"), "--quiet")
    return command


def reaper_command() -> list[str]:
    """The reaper's command line."""
    return [sys.executable, "-m", "services.cli.main", "reaper"]


def run_reaper_process(settings: Settings) -> None:
    """Run the reaper in this process until SIGTERM or Ctrl-C."""
    from shared.log_format import configure
    from shared.queue import make_celery
    from workers.reaper import run_reaper

    configure("reaper", settings.log_format, "%(asctime)s reaper %(levelname)s %(message)s")

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        run_reaper(settings, make_celery(settings, name="gentrain-reaper"))


def run_all(settings: Settings, api_workers: int = 2) -> int:
    """Run the API and a training and a sampling worker until Ctrl-C or SIGTERM; stop them all."""
    env = os.environ.copy()
    children = [
        (
            "api",
            subprocess.Popen(api_command(settings, api_workers), env=api_environment(settings)),
        ),
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
