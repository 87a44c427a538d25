#!/usr/bin/env python
"""Load benchmark of the gentrain API on the full stack: PostgreSQL, a Redis broker, S3 (moto).

Run from the repository root::

    .venv/bin/python bench/api_load.py

In one run it starts everything it needs on loopback (a fresh PostgreSQL database, a moto S3
server, the API under gunicorn as a real ``gentrain api`` process, a real ``gentrain worker``)
and measures:

1. status polling: ``GET /v1/jobs/<id>`` throughput and latency p50/p99, for several gunicorn
   configurations side by side (the default worker class vs gthread);
2. submission: ``POST /v1/jobs`` throughput and latency p50/p99 (no worker running: jobs queue);
3. submission-to-running delay with an idle, warm worker, from each job's status history.

The load generator is ``wrk`` when it is installed (``apt-get install wrk``), else a Python
generator of several processes with keep-alive connections. Every load loop is bounded in time
and in count; everything started is stopped, and the database dropped, even on failure.
It prints markdown tables (and ``--json PATH`` writes the raw figures).

Besides latency and throughput it reports the CPU time per request of the gunicorn processes and
of the PostgreSQL backends, and how much of the machine other work took during each run: on a
shared 2-core machine that column says whether the figures are worth having. The per-owner
submission limit (``GENTRAIN_SUBMIT_RATE_PER_MINUTE``, 60 by default) is raised to its ceiling
so that phase 2 measures the API and not the limiter. Requires PostgreSQL (user ``postgres``,
trust auth) and Redis on 127.0.0.1; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
import requests

from shared.job_state import TERMINAL_STATUSES

ROOT = Path(__file__).resolve().parent.parent
GENTRAIN = ROOT / ".venv" / "bin" / "gentrain"
DATASET = ROOT / "tests" / "fixtures" / "mnist_5k.npz"
LOOPBACK = "127.0.0.1"
TERMINAL = {str(status) for status in TERMINAL_STATUSES}
# The brief's targets on a 2-core machine.
TARGET_READS_PER_S = 500.0
TARGET_READ_P99_MS = 50.0
TARGET_RUNNING_DELAY_S = 1.0
# Busier than this before the run starts, and other work would skew the figures.
QUIET_BUSY_PCT = 15.0
# A load run during which other work took more than this share of the machine is flagged.
CONTENDED_PCT = 10.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Infrastructure: ports, processes, database, moto, redis


def cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


def busy_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    total, idle = after[0] - before[0], after[1] - before[1]
    return 100.0 * (1 - idle / total) if total else 0.0


def background_busy(seconds: float = 2.0) -> float:
    """How busy the machine is before the benchmark starts anything (other people's work)."""
    before = cpu_times()
    time.sleep(seconds)
    return busy_percent(before, cpu_times())


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes_cpu_seconds(pgid: int | None = None, database: str | None = None) -> float:
    """CPU seconds used so far by live processes of group ``pgid``, or by the PostgreSQL
    backends connected to ``database`` (their title names it)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if pgid is not None and int(fields[2]) != pgid:
            continue
        if database is not None:
            if name != "postgres":
                continue
            try:
                title = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if f" {database} " not in title:
                continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / CLOCK_TICKS


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (wrk, the Python load processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class QuietWaiter:
    """Waits, within one budget for the whole run, for other people's work on this machine to
    stop before a measurement: the figures are only worth having on an otherwise idle machine."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def wait(self, what: str) -> float:
        """Wait for a quiet machine (until the budget is spent); return how busy it was."""
        busy = background_busy(1.0)
        while busy > QUIET_BUSY_PCT and self.budget_s > 0:
            log(f"{busy:.0f}% busy with other work before {what}; waiting (budget "
                f"{self.budget_s:.0f} s left)")  # fmt: skip
            time.sleep(2)
            self.budget_s -= 3
            busy = background_busy(1.0)
        if busy > QUIET_BUSY_PCT:
            log(f"WARNING: {busy:.0f}% busy with other work before {what}; figures skewed")
        return busy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def check_loopback(url: str) -> None:
    """Refuse to send load anywhere but this machine's loopback."""
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise SystemExit(f"refusing non-loopback address {url!r}")


class Process:
    """A child process in its own process group, whose output goes to a log file."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: gunicorn's and celery's children go with it
        )
        log(f"started {name} (pid {self.popen.pid}): {' '.join(command[-6:])}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {timeout:g} s; killing its process group")
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=5)
        # Children (gunicorn workers, celery pool) that outlived their parent.
        self._signal_group(signal.SIGKILL)
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """Everything the benchmark starts, and how to reach it."""

    work_dir: Path
    db_name: str
    database_url: str
    broker_url: str
    s3_url: str
    bucket: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)
    api_key: str | None = None

    def start(
        self, name: str, command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> Process:
        process = Process(name, command, {**self.env, **(env or {})}, self.work_dir, cwd)
        self.processes.append(process)
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        if process in self.processes:
            self.processes.remove(process)

    def flush_broker(self) -> None:
        client = redis.Redis.from_url(self.broker_url)
        try:
            client.flushdb()
        finally:
            client.close()

    def count_jobs(self) -> int:
        with psycopg.connect(self.psycopg_dsn) as conn:
            row = conn.execute("SELECT count(*) FROM jobs").fetchone()
            return int(row[0]) if row else 0

    def vacuum(self) -> None:
        """VACUUM ANALYZE the benchmark's database, so that autovacuum, woken by thousands of
        jobs a submission run created, does not land in the next configuration's run."""
        with psycopg.connect(self.psycopg_dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    @property
    def psycopg_dsn(self) -> str:
        return f"host={LOOPBACK} port=5432 user=postgres dbname={self.db_name}"


def _admin_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(
        f"host={LOOPBACK} port=5432 user=postgres dbname=postgres", autocommit=True
    )


@contextlib.contextmanager
def full_stack(redis_db: int, keep: bool) -> Iterator[Stack]:
    """Create the database, the moto S3 server, the data dir; tear all down on the way out."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    cleanups: list[tuple[str, Any]] = []
    stack: Stack | None = None
    work_dir = Path(tempfile.mkdtemp(prefix="gentrain-bench-"))
    cleanups.append(("work dir", lambda: None if keep else shutil.rmtree(work_dir, True)))
    try:
        db_name = f"gentrain_bench_{os.getpid()}"
        with _admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
            admin.execute(f'CREATE DATABASE "{db_name}"')

        def drop_database() -> None:
            with _admin_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

        cleanups.append(("database", drop_database))
        log(f"created database {db_name}")

        s3_port = free_port()
        moto = ThreadedMotoServer(ip_address=LOOPBACK, port=s3_port, verbose=False)
        moto.start()
        cleanups.append(("moto", moto.stop))
        s3_url = f"http://{LOOPBACK}:{s3_port}"
        log(f"moto S3 at {s3_url}")

        broker_url = f"redis://{LOOPBACK}:6379/{redis_db}"
        database_url = f"postgresql+psycopg://postgres@{LOOPBACK}:5432/{db_name}"
        bucket = "gentrain-bench"
        env = {
            **os.environ,
            "GENTRAIN_DATABASE_URL": database_url,
            "GENTRAIN_BROKER_URL": broker_url,
            "GENTRAIN_S3_BUCKET": bucket,
            "GENTRAIN_S3_ENDPOINT_URL": s3_url,
            "GENTRAIN_S3_ACCESS_KEY_ID": "test",
            "GENTRAIN_S3_SECRET_ACCESS_KEY": "test",
            "GENTRAIN_DATA_DIR": str(work_dir / "data"),
            "GENTRAIN_API_HOST": LOOPBACK,
            # The per-owner submission limit (60 a minute by default) would turn a throughput
            # test into a test of the limiter: raise it to its ceiling.
            "GENTRAIN_SUBMIT_RATE_PER_MINUTE": "100000",
            # Likewise the cap on one owner's queued and running jobs (phase 2 queues thousands).
            "GENTRAIN_MAX_ACTIVE_JOBS_PER_OWNER": "1000000",
            # Keep the benchmark's own processes quiet and single-threaded where it matters.
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("GENTRAIN_API_URL", "GENTRAIN_S3_PUBLIC_ENDPOINT_URL", "AWS_PROFILE"):
            env.pop(name, None)
        stack = Stack(work_dir, db_name, database_url, broker_url, s3_url, bucket, env)
        stack.flush_broker()
        cleanups.append(("redis db", stack.flush_broker))
        yield stack
    finally:
        if stack is not None:
            for process in list(stack.processes):
                try:
                    stack.stop(process)
                except Exception as error:  # noqa: BLE001 - keep cleaning up
                    log(f"stopping {process.name} failed: {error}")
        for name, cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as error:  # noqa: BLE001 - keep cleaning up
                log(f"cleanup of {name} failed: {error}")
        log("cleaned up" + (f" (kept {work_dir})" if keep else ""))


def wait_http(url: str, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not up after {timeout:g} s:\n{process.tail()}")


def run_cli(stack: Stack, *args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [str(GENTRAIN), *args], env=stack.env, cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"gentrain {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --------------------------------------------------------------------------------------------
# Load generators


@dataclass
class LoadResult:
    """One closed-loop load run."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    # How busy the whole machine (all cores) was during the run: server, database, generator.
    cpu_busy_pct: float | None = None
    # CPU time per request of the gunicorn processes and of PostgreSQL (all its processes).
    api_cpu_ms: float | None = None
    db_cpu_ms: float | None = None
    # CPU used by the load generator, in % of one core.
    generator_cpu_pct: float | None = None
    # The machine's CPU used by none of the above (other people's work), in % of all cores.
    other_busy_pct: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def wrk_load(
    url: str,
    method: str,
    body: str | None,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    scripts: Path,
) -> LoadResult:
    check_loopback(url)
    script = scripts / f"wrk_{method.lower()}.lua"
    lines = [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    if method != "GET":
        lines.append(f'wrk.method = "{method}"')
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    script.write_text("\n".join(lines) + "\n" + WRK_REPORT)
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        mean_ms=data["mean"] / 1000,
    )


def _python_client(
    target: tuple[str, int, str, str, bytes | None, dict[str, str]],
    cap: int,
    ready: Any,
    go: Any,
    deadline: Any,
    out: Any,
) -> None:
    """One load process: one keep-alive connection, requests from ``go`` until the deadline
    (or the cap on requests)."""
    host, port, method, path, body, headers = target
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    conn = http.client.HTTPConnection(host, port, timeout=5)
    ready.put(os.getpid())
    if go.wait(timeout=60):
        while time.time() < deadline.value and len(latencies) + errors < cap:
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=5)
                continue
            if response.status >= 400:
                errors += 1
            else:
                latencies.append(time.perf_counter() - started)
    conn.close()
    out.put((latencies, errors, time.time()))


def python_load(
    url: str,
    method: str,
    body: str | None,
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> LoadResult:
    """Closed-loop load from ``connections`` processes (one keep-alive connection each), all
    started before the clock runs."""
    check_loopback(url)
    parsed = urlsplit(url)
    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    deadline = context.Value("d", 0.0)
    target = (parsed.hostname or LOOPBACK, parsed.port or 80, method, parsed.path,
              body.encode() if body is not None else None, headers)  # fmt: skip
    procs = [
        context.Process(
            target=_python_client, args=(target, 500_000, ready, go, deadline, out), daemon=True
        )
        for _ in range(connections)
    ]
    latencies: list[float] = []
    errors = 0
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get(timeout=60)
        started = time.time()
        deadline.value = started + seconds
        go.set()
        finished = started
        for _ in procs:
            lat, err, ended = out.get(timeout=seconds + 30)
            latencies.extend(lat)
            errors += err
            finished = max(finished, ended)
        elapsed = max(1e-3, finished - started)
    finally:
        go.set()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return LoadResult(
        requests=len(latencies) + errors,
        seconds=min(elapsed, seconds + 5),
        errors=errors,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        max_ms=latencies[-1] * 1000 if latencies else float("nan"),
        mean_ms=statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    )


# --------------------------------------------------------------------------------------------
# The phases


@dataclass
class ApiConfig:
    workers: int
    threads: int
    # API keys required (as whenever the API binds beyond loopback): each request checks one.
    auth: bool = False
    # Keep client connections open between requests (gunicorn's own default of 2 s) instead of
    # `gentrain api`'s default of one request per connection.
    keep_alive: bool = False
    # Serve the service's code as of this git revision instead of the working tree's (same
    # virtualenv and database): the earlier code side by side with the current one.
    revision: str | None = None

    @property
    def label(self) -> str:
        # One thread is `gentrain api`'s default worker class of that revision: sync workers
        # before issue 10, gevent since.
        worker_class = "gthread" if self.threads > 1 else "default"
        keys = " + API key" if self.auth else ""
        keys += " + keep-alive" if self.keep_alive else ""
        at = f" @ {self.revision}" if self.revision else ""
        return f"{worker_class} {self.workers}w×{self.threads}t{keys}{at}"


@dataclass
class ConfigResult:
    config: str
    status: LoadResult | None = None
    submit: LoadResult | None = None
    jobs_created: int | None = None
    error: str | None = None


@dataclass
class DelayResult:
    delays_s: list[float] = field(default_factory=list)
    client_delays_s: list[float] = field(default_factory=list)
    job_seconds: list[float] = field(default_factory=list)
    worker_ready_s: float | None = None
    jobs_label: str = ""
    error: str | None = None


def checkout_revision(stack: Stack, revision: str) -> Path:
    """The service's packages as of ``revision``, exported under the work dir (once)."""
    target = stack.work_dir / f"rev-{revision}"
    if not target.exists():
        target.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "services", "shared", "workers"],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def start_api(stack: Stack, config: ApiConfig, name: str) -> tuple[Process, str]:
    port = free_port()
    env = {"GENTRAIN_AUTH": "required" if config.auth else "off"}
    command, cwd, checkout = [str(GENTRAIN)], ROOT, None
    if config.revision:
        # Run from the exported tree: gunicorn and `python -m` put the working directory first
        # on sys.path, and PYTHONPATH comes before the editable install's finder.
        checkout = checkout_revision(stack, config.revision)
        env["PYTHONPATH"] = str(checkout)
        env["PYTHONDONTWRITEBYTECODE"] = ""  # its __pycache__ proves which code was loaded
        command, cwd = [str(GENTRAIN.parent / "python"), "-m", "services.cli.main"], checkout
    api = stack.start(
        name,
        [*command, "api", "--host", LOOPBACK, "--port", str(port),
         "--workers", str(config.workers), "--threads", str(config.threads),
         *(["--keep-alive", "2"] if config.keep_alive else [])],
        env=env,
        cwd=cwd,
    )  # fmt: skip
    base = f"http://{LOOPBACK}:{port}"
    wait_http(f"{base}/healthz", api, timeout=60)
    if checkout is not None and not any((checkout / "services" / "api").glob("__pycache__/*")):
        raise RuntimeError(f"the API at {config.revision} did not load {checkout}'s code")
    return api, base


def upload_dataset(base: str, name: str, headers: dict[str, str] | None = None) -> None:
    with DATASET.open("rb") as handle:
        response = requests.post(
            f"{base}/v1/datasets", files={"file": (DATASET.name, handle)}, data={"name": name},
            headers=headers or {}, timeout=60,
        )  # fmt: skip
    if response.status_code != 201:
        raise RuntimeError(f"dataset upload: {response.status_code} {response.text[:300]}")


def submit(session: requests.Session, base: str, dataset: str, params: dict[str, Any]) -> str:
    response = session.post(
        f"{base}/v1/jobs",
        json={"kind": "autoencoder", "dataset": dataset, "params": params},
        timeout=30,
    )
    if response.status_code != 202:
        raise RuntimeError(f"submit: {response.status_code} {response.text[:300]}")
    return str(response.json()["id"])


def wait_terminal(
    session: requests.Session, base: str, job_id: str, timeout: float, worker: Process | None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = session.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
        if job["status"] in TERMINAL:
            return dict(job)
        if worker is not None and not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        time.sleep(0.05)
    raise RuntimeError(f"job {job_id} not finished after {timeout:g} s")


def _history_time(job: dict[str, Any], status: str) -> datetime | None:
    for event in job.get("history") or []:
        if event["status"] == status and event.get("at"):
            return datetime.fromisoformat(event["at"])
    return None


def measure_running_delay(
    stack: Stack, base: str, dataset: str, jobs: int, idle_s: float, budget_s: float
) -> tuple[DelayResult, str | None]:
    """Phase 3: a warm idle worker; jobs one at a time; queued→running from each history."""
    params = {"epochs": 1, "max_train_images": 512}
    result = DelayResult(
        jobs_label=f"{jobs} jobs with params `{json.dumps(params)}`, one at a time, "
        f"each submitted {idle_s:g} s after the previous one finished"
    )
    http = requests.Session()
    started = time.monotonic()
    worker = stack.start("worker", [str(GENTRAIN), "worker", "--queues", "train"])
    last_job: str | None = None
    try:
        # The first job warms the worker (TensorFlow import in the pool child, first graph build).
        warm = submit(http, base, dataset, params)
        job = wait_terminal(http, base, warm, timeout=max(30.0, budget_s * 0.6), worker=worker)
        if job["status"] != "succeeded":
            raise RuntimeError(f"warm-up job {job['status']}: {job.get('error')}")
        result.worker_ready_s = round(time.monotonic() - started, 2)
        log(f"worker warm after {result.worker_ready_s} s")
        last_job = warm
        for index in range(jobs):
            if time.monotonic() - started > budget_s:
                log(f"phase 3 budget of {budget_s:g} s spent after {index} jobs")
                break
            time.sleep(idle_s)  # the worker is idle, waiting on the broker
            sent = datetime.now().astimezone()
            job_id = submit(http, base, dataset, params)
            job = wait_terminal(http, base, job_id, timeout=60, worker=worker)
            queued, running = _history_time(job, "queued"), _history_time(job, "running")
            finished = _history_time(job, job["status"])
            if job["status"] != "succeeded" or queued is None or running is None:
                raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
            result.delays_s.append((running - queued).total_seconds())
            result.client_delays_s.append((running - sent).total_seconds())
            if finished is not None:
                result.job_seconds.append((finished - queued).total_seconds())
            last_job = job_id
            log(f"job {index + 1}/{jobs}: queued→running {result.delays_s[-1] * 1000:.1f} ms")
    except Exception as error:  # noqa: BLE001 - report it, go on with the other phases
        result.error = f"{type(error).__name__}: {error}"
        log(f"phase 3 failed: {result.error}")
    finally:
        stack.stop(worker)
        stack.flush_broker()
    return result, last_job


def measure_config(
    stack: Stack, config: ApiConfig, dataset: str, poll_job: str, args: argparse.Namespace
) -> ConfigResult:
    """Phases 1 and 2 against one gunicorn configuration (no worker running)."""
    result = ConfigResult(config.label)
    api: Process | None = None
    try:
        name = f"api-{config.workers}w{config.threads}t{'-auth' if config.auth else ''}"
        name += f"-{config.revision}" if config.revision else ""
        api, base = start_api(stack, config, name)
        headers: dict[str, str] = {}
        if config.auth:
            # An admin key sees the polled job (owned by the keyless user); its owner submits
            # against a copy of the dataset of its own.
            if stack.api_key is None:
                output = run_cli(stack, "keys", "create", "bench", "--admin")
                stack.api_key = output.strip().splitlines()[-1].strip()
                upload_dataset(base, dataset, {"Authorization": f"Bearer {stack.api_key}"})
            headers = {"Authorization": f"Bearer {stack.api_key}"}
        get_url = f"{base}/v1/jobs/{poll_job}"
        body = json.dumps({"kind": "autoencoder", "dataset": dataset, "params": {"epochs": 1}})
        probe = requests.get(get_url, headers=headers, timeout=10)
        if probe.status_code != 200:
            raise RuntimeError(f"GET {get_url}: {probe.status_code} {probe.text[:200]}")

        def load(url: str, method: str, body: str | None, seconds: float) -> LoadResult:
            assert api is not None
            machine, generator = cpu_times(), children_cpu_seconds()
            server = processes_cpu_seconds(pgid=api.pid)
            database = processes_cpu_seconds(database=stack.db_name)
            run: LoadResult = args.load(url, method, body, headers, args.connections, seconds)
            run.cpu_busy_pct = round(busy_percent(machine, cpu_times()), 1)
            served = max(1, run.requests)
            server = processes_cpu_seconds(pgid=api.pid) - server
            database = processes_cpu_seconds(database=stack.db_name) - database
            run.api_cpu_ms = round(server / served * 1000, 2)
            run.db_cpu_ms = round(database / served * 1000, 2)
            generator = children_cpu_seconds() - generator
            run.generator_cpu_pct = round(generator / run.seconds * 100, 1)
            ours = (server + database + generator) / (run.seconds * (os.cpu_count() or 1)) * 100
            run.other_busy_pct = round(max(0.0, run.cpu_busy_pct - ours), 1)
            return run

        # Warm every gunicorn worker: imports, connection pools, first queries.
        load(get_url, "GET", None, args.warmup)
        result.status = load(get_url, "GET", None, args.duration)
        log(f"{config.label} GET: {result.status.rps:.0f} req/s p50 {result.status.p50_ms:.1f} "
            f"p99 {result.status.p99_ms:.1f} ms, {result.status.errors} errors")  # fmt: skip
        before = stack.count_jobs()
        result.submit = load(f"{base}/v1/jobs", "POST", body, args.duration)
        result.jobs_created = stack.count_jobs() - before
        log(f"{config.label} POST: {result.submit.rps:.0f} req/s p50 {result.submit.p50_ms:.1f} "
            f"p99 {result.submit.p99_ms:.1f} ms, {result.submit.errors} errors, "
            f"{result.jobs_created} jobs created")  # fmt: skip
    except Exception as error:  # noqa: BLE001 - report it, go on with the next configuration
        result.error = f"{type(error).__name__}: {error}"
        log(f"{config.label} failed: {result.error}")
    finally:
        if api is not None:
            stack.stop(api)
        stack.flush_broker()
        stack.vacuum()
    return result


# --------------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _load_rows(configs: list[ConfigResult], which: str) -> list[str]:
    rows = [
        "| gunicorn config | req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| API CPU ms/req | PostgreSQL CPU ms/req | wrk CPU % | machine busy % | other work % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in configs:
        run: LoadResult | None = getattr(result, which)
        if run is None:
            error = " ".join((result.error or "?").split())[:160].replace("|", "/")
            rows.append(f"| {result.config} | failed: {error} |" + " |" * 10)
            continue
        contended = (run.other_busy_pct or 0) > CONTENDED_PCT
        rows.append(
            f"| {result.config}{' ⚠' if contended else ''} | {run.rps:.0f}"
            f" | {run.p50_ms:.1f} | {run.p90_ms:.1f}"
            f" | {run.p99_ms:.1f} | {run.max_ms:.0f} | {run.errors}"
            f" | {_fmt(run.api_cpu_ms, 2)} | {_fmt(run.db_cpu_ms, 2)}"
            f" | {_fmt(run.generator_cpu_pct, 0)} | {_fmt(run.cpu_busy_pct, 0)}"
            f" | {_fmt(run.other_busy_pct, 0)} |"
        )
    return rows


def render_markdown(meta: dict[str, Any], configs: list[ConfigResult], delay: DelayResult) -> str:
    generator = meta["generator"]
    out = [
        f"Load generator: **{generator}**, {meta['connections']} concurrent connections "
        f"(closed loop), {meta['duration']:g} s per run after a {meta['warmup']:g} s warm-up; "
        "no worker running. "
        f"Machine: {meta['machine']}; {meta['background_busy_pct']:.0f}% busy with other work "
        "just before the run.",
        "",
        f"**1. Status polling: `GET /v1/jobs/<id>`** ({meta['polled_job_view']})",
        "",
        *_load_rows(configs, "status"),
        "",
        '**2. Submission: `POST /v1/jobs`** (`{"kind":"autoencoder",...,"params":{"epochs":1}}`, '
        "jobs only queue)",
        "",
        *_load_rows(configs, "submit"),
        "",
    ]
    if not generator.startswith("wrk"):
        out = [line.replace("| wrk CPU % |", "| generator CPU % |") for line in out]
    out += [
        f"**3. Submission → running** with an idle, warm worker ({delay.jobs_label})",
        "",
        "| measure | value |",
        "|---|---:|",
    ]
    if delay.delays_s:
        median_ms = statistics.median(delay.delays_s) * 1000
        client_ms = statistics.median(delay.client_delays_s) * 1000
        job_s = statistics.median(delay.job_seconds) if delay.job_seconds else None
        out += [
            f"| jobs measured | {len(delay.delays_s)} |",
            f"| queued→running median (from history) | {median_ms:.1f} ms |",
            f"| queued→running max (from history) | {max(delay.delays_s) * 1000:.1f} ms |",
            f"| client POST sent→running median | {client_ms:.1f} ms |",
            f"| queued→succeeded median | {_fmt(job_s, 2)} s |",
            f"| worker start → warm-up job done | {_fmt(delay.worker_ready_s, 1)} s |",
        ]
    if delay.error:
        out.append(f"| error | {' '.join(delay.error.split())[:200].replace('|', '/')} |")
    runs = [run for r in configs for run in (r.status, r.submit) if run is not None]
    if any((run.other_busy_pct or 0) > CONTENDED_PCT for run in runs):
        out += [
            "",
            f"⚠ During this run, work outside the benchmark used more than {CONTENDED_PCT:g}% "
            "of the machine (column *other work*): its figures are too low. Run it again on an "
            "idle machine.",
        ]
    out += ["", "Targets: " + "; ".join(targets_line(configs, delay)) + "."]
    return "\n".join(out)


def targets_line(configs: list[ConfigResult], delay: DelayResult) -> list[str]:
    lines = []
    for result in configs:
        if result.status is None:
            continue
        ok = result.status.rps >= TARGET_READS_PER_S and result.status.p99_ms < TARGET_READ_P99_MS
        lines.append(
            f"{result.config}: reads {'met' if ok else 'MISSED'} "
            f"(≥{TARGET_READS_PER_S:.0f}/s with p99 < {TARGET_READ_P99_MS:.0f} ms)"
        )
    if delay.delays_s:
        ok = max(delay.delays_s) < TARGET_RUNNING_DELAY_S
        lines.append(
            f"submission→running {'met' if ok else 'MISSED'} (< {TARGET_RUNNING_DELAY_S:g} s)"
        )
    return lines


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, Python {platform.python_version()}"


# --------------------------------------------------------------------------------------------
# Main


def parse_config(text: str) -> ApiConfig:
    text, _, revision = text.partition("@")
    if revision:
        check = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if check.returncode != 0:
            raise ValueError(f"unknown git revision {revision!r}")
    shape, *extras = text.split("+")
    unknown = set(extras) - {"auth", "keepalive"}
    if unknown:
        raise ValueError(f"unknown config suffix {sorted(unknown)[0]!r} in {text!r}")
    if revision and "keepalive" in extras:
        raise ValueError("+keepalive needs the current code (older `gentrain api` keeps alive)")
    workers, _, threads = shape.partition("x")
    return ApiConfig(
        int(workers),
        int(threads or 1),
        auth="auth" in extras,
        keep_alive="keepalive" in extras,
        revision=revision or None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            --configs takes WORKERSxTHREADS items; 1 thread means `gentrain api`'s default worker
            class (sync before issue 10, gevent since), more means gthread. A "+auth" suffix
            requires API keys
            (GENTRAIN_AUTH=required, as whenever the API binds beyond loopback) and sends an
            admin key with every request. "+keepalive" keeps client connections open between
            requests (gunicorn's 2 s; `gentrain api` closes them by default). An "@REV" suffix
            serves the service's code as of git revision REV (same virtualenv, same database),
            e.g. "2x4@HEAD~5": the earlier code side by side with the current one."""
        ),
    )
    parser.add_argument(
        "--configs",
        default="2x1,2x1+auth,4x1,2x4,2x4+keepalive",
        help="gunicorn configs to compare (default: %(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="concurrent keep-alive connections (default: %(default)s)",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="go through the configurations this many times"
    )
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up GETs")
    parser.add_argument("--jobs", type=int, default=10, help="jobs for the running-delay phase")
    parser.add_argument(
        "--idle",
        type=float,
        default=0.5,
        help="seconds the worker sits idle before each job (default: %(default)s)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="total seconds to wait for other work on the machine to stop (default: %(default)s)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis db to use and flush")
    parser.add_argument("--skip-worker", action="store_true", help="skip phase 3")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args(argv)
    if (
        not 1 <= args.connections <= 256
        or not 1 <= args.duration <= 60
        or args.jobs > 50
        or not 1 <= args.rounds <= 5
    ):
        parser.error(
            "bounded load only: 1-256 connections, 1-60 s per run, at most 50 jobs, 1-5 rounds"
        )
    try:
        configs = [parse_config(item) for item in args.configs.split(",") if item]
    except ValueError as error:
        parser.error(f"--configs: {error}")

    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    if args.generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    generator = (
        "wrk (1 thread)" if use_wrk else f"Python ({args.connections} processes, http.client)"
    )

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    # Ctrl-C cleans up too, even where the shell started this with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    quiet = QuietWaiter(args.quiet_wait)
    background = quiet.wait("the start")
    started = time.monotonic()
    dataset = "mnist5k"
    with full_stack(args.redis_db, args.keep) as stack, tempfile.TemporaryDirectory() as scripts:
        if use_wrk:
            args.load = lambda url, method, body, headers, conns, secs: wrk_load(
                url, method, body, headers, conns, secs, Path(scripts)
            )
        else:
            args.load = python_load
        log("migrating the database")
        run_cli(stack, "db", "upgrade")

        # Phase 3 first, on the default configuration: it leaves a finished job (with history,
        # metrics and artifacts), the realistic thing for phase 1 to poll.
        api, base = start_api(stack, ApiConfig(2, 4), "api-setup")
        upload_dataset(base, dataset)
        log("dataset uploaded")
        if args.skip_worker:
            delay, poll_job = DelayResult(jobs_label="skipped"), None
        else:
            delay, poll_job = measure_running_delay(
                stack, base, dataset, args.jobs, args.idle, budget_s=150
            )
        if poll_job is None:
            poll_job = submit(requests.Session(), base, dataset, {"epochs": 1})
            log(f"polling a queued job {poll_job} (no finished job available)")
        polled_raw = requests.get(f"{base}/v1/jobs/{poll_job}", timeout=10).content
        polled = json.loads(polled_raw)
        stack.stop(api)
        stack.flush_broker()

        results = []
        for round_number in range(1, args.rounds + 1):
            for config in configs:
                label = config.label + (f" (round {round_number})" if args.rounds > 1 else "")
                quiet.wait(label)
                result = measure_config(stack, config, dataset, poll_job, args)
                result.config = label
                results.append(result)

        meta = {
            "generator": generator,
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "machine": machine_line(),
            "background_busy_pct": round(background, 1),
            "polled_job": poll_job,
            "polled_job_view": (
                f"a {polled.get('status')} job: {len(polled.get('history') or [])} history events,"
                f" {len(polled.get('artifacts') or [])} artifacts, "
                f"{'with' if polled.get('latest_metrics') else 'no'} metrics; "
                f"{len(polled_raw)} bytes of JSON"
            ),
            "seconds_total": round(time.monotonic() - started, 1),
        }
    table = render_markdown(meta, results, delay)
    print(table)
    log(f"done in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "configs": [
                        {
                            **asdict(r),
                            "status_rps": r.status.rps if r.status else None,
                            "submit_rps": r.submit.rps if r.submit else None,
                        }
                        for r in results
                    ],
                    "running_delay": asdict(delay),
                },
                indent=2,
            )  # fmt: skip
        )
    failed = any(r.error for r in results) or delay.error is not None
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
