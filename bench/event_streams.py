#!/usr/bin/env python
"""Live event streams (issue 11) on the production server: status reads with and without open
streams, the delay from a metrics row's commit to its event, and the memory of an open stream.

Run from the repository root::

    .venv/bin/python bench/event_streams.py            # about 7 minutes

It serves the API as ``gentrain api`` does by default (2 gevent worker processes), a fresh
process for each measurement, and in one run:

1. status reads: wrk on ``GET /v1/jobs/<id>`` (a succeeded job) with no event stream open, with
   ``--streams`` open and *following* (opened from the log's head: streams of ``--jobs`` running
   jobs, a few on each, plus ``--list-streams`` streams of the job list), and with as many
   *replaying* (opened from the start as the reads begin: each replays its job's history);
   the three interleaved over ``--rounds`` rounds, each first, middle and last in turn. A writer
   process records an epoch of each running job about every ``--epoch-seconds`` throughout,
   whatever the configuration, so that they differ only by the streams;
2. the delay from a metrics row's commit (in the writer, through ``shared.jobs``: ``claim``, then
   ``record_epoch`` under the lease, as the worker does) to the ``metrics`` event's arrival, for
   ``--delay-epochs`` epochs a random 0.2-0.6 s apart on one stream: on PostgreSQL with Redis
   (pub/sub wake-ups), and on the embedded default (SQLite and the ``filesystem://`` broker,
   polling); and the same delay on every stream during the reads of phase 1;
3. memory: the RSS of the gunicorn workers (summed) before and after opening the streams of
   phase 1, divided by their number, and after closing them again.

Every stream is checked too: metrics rows committed while it was open and not delivered, or
delivered twice or out of order. Needs PostgreSQL (user ``postgres``, trust auth), Redis and wrk
on loopback, as bench/api_load.py does (whose stack, API start and wrk it uses). It prints
markdown; ``--json PATH`` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_load import (  # noqa: E402
    ApiConfig,
    LoadResult,
    Process,
    QuietWaiter,
    Stack,
    full_stack,
    log,
    machine_line,
    run_cli,
    start_api,
    wrk_load,
)
from bench.event_load import (  # noqa: E402
    Commits,
    Delivery,
    EpochWriter,
    Replay,
    StreamClients,
    StreamStats,
    match_receipts,
    replay_of,
)
from bench.process_stats import (  # noqa: E402
    BackendSampler,
    CpuAccount,
    api_workers,
    rss_kib,
    socket_count,
)

# `gentrain api`'s defaults: 2 processes of the gevent worker (one thread means that class).
SERVER = ApiConfig(2, 1)
TARGET_READ_RATIO = 0.9
TARGET_DELAY_S = {"PostgreSQL + Redis": 0.5, "embedded (SQLite, filesystem://)": 1.5}
DELAY_GAPS = (0.2, 0.6)


# --------------------------------------------------------------------------------------------
# Setup: jobs straight through shared.jobs (as the API and the worker write them)


def create_jobs(database_url: str, count: int) -> list[str]:
    from shared.db.session import session_scope
    from shared.jobs import NewJob, create_jobs

    with session_scope(database_url) as session:
        return create_jobs(session, [NewJob("autoencoder", "autoencoder", "", {})] * count)


def finished_job(database_url: str) -> str:
    """A succeeded job with 5 epochs of metrics and a sample grid: the job view polled."""
    from shared.db.session import session_scope
    from shared.job_state import JobStatus
    from shared.jobs import claim, finish, record_artifact, record_epoch
    from shared.storage import StoredObject

    (job_id,) = create_jobs(database_url, 1)
    with session_scope(database_url) as session:
        job = claim(session, job_id, "bench@localhost")
        assert job is not None and job.lease is not None
        lease = job.lease
    for step in range(1, 6):
        with session_scope(database_url) as session:
            record_epoch(
                session, job_id, lease, step=step, values={"loss": 1.0 / step}, seconds=0.1,
                progress=step / 5, eta_seconds=float(5 - step),
            )  # fmt: skip
    with session_scope(database_url) as session:
        stored = StoredObject(key=f"jobs/{job_id}/samples/grid.png", size=10, sha256="0" * 64)
        record_artifact(session, job_id, lease, "samples/grid.png", stored, "image/png")
        finish(session, job_id, lease, JobStatus.SUCCEEDED, results={"test_mse": 0.03})
    return job_id


@contextlib.contextmanager
def embedded_stack(keep: bool) -> Iterator[Stack]:
    """The embedded default: SQLite and the filesystem broker under a fresh data dir."""
    from shared.db.migrate import upgrade
    from shared.settings import Settings

    work_dir = Path(tempfile.mkdtemp(prefix="gentrain-bench-embedded-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENTRAIN_", "AWS_"))}
    env |= {"GENTRAIN_DATA_DIR": str(work_dir / "data"), "PYTHONUNBUFFERED": "1"}
    settings = Settings(data_dir=work_dir / "data")
    upgrade(settings.database_url)
    stack = Stack(work_dir, "", settings.database_url, settings.broker_url, "", "", env)
    try:
        yield stack
    finally:
        for process in list(stack.processes):
            stack.stop(process)
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def log_heads(database_url: str, job_ids: list[str]) -> tuple[dict[str, int], int]:
    """The latest change-log id of each job, and of the whole log: where a stream resumes."""
    from sqlalchemy import text

    from shared.db.session import read_connection

    with read_connection(database_url) as connection:
        rows = connection.execute(
            text("SELECT job_id, max(id) FROM job_events GROUP BY job_id")
        ).all()
        head = int(
            connection.execute(text("SELECT coalesce(max(id), 0) FROM job_events")).scalar_one()
        )
    latest = {str(job_id): int(top) for job_id, top in rows}
    return {job_id: latest.get(job_id, 0) for job_id in job_ids}, head


# --------------------------------------------------------------------------------------------
# The measurements

# How the streams of a configuration are opened: none; resuming from the log's head (each job
# stream from its job's latest id, as a reconnecting client does), so that only following costs;
# or from the start (a client that opens a stream without an id replays the job's whole history).
MODES = ("none", "following", "replaying")


@dataclass
class ReadRun:
    """One configuration of phase 1 in one round, on a fresh API."""

    round: int
    mode: str
    reads: LoadResult | None = None
    streams_open: int = 0
    streams_failed: list[str] = field(default_factory=list)
    sockets_per_worker: list[int] = field(default_factory=list)  # sockets the streams added
    rss_before_kib: int = 0
    rss_open_kib: int = 0
    rss_closed_kib: int = 0
    # % of a core the API's processes and PostgreSQL used with the streams open and no reads
    upkeep_api_pct: float | None = None
    upkeep_db_pct: float | None = None
    backends_open: int | None = None  # connected to the database with the streams open, idle
    backends_most: int | None = None  # during the reads
    client_cpu_pct: float | None = None
    writer_cpu_pct: float | None = None
    delivery: Delivery | None = None  # rows committed during the reads, on every job stream
    replay: Replay | None = None
    events: dict[str, int] = field(default_factory=dict)
    streams_ended: int = 0
    error: str | None = None

    @property
    def rss_per_stream_kib(self) -> float | None:
        if not self.streams_open or not self.rss_before_kib or not self.rss_open_kib:
            return None
        return (self.rss_open_kib - self.rss_before_kib) / self.streams_open


def stream_paths(
    stack: Stack, job_ids: list[str], streams: int, list_streams: int, resume: bool
) -> list[str]:
    """Job streams spread over ``job_ids``, then list streams; from the head if ``resume``."""
    latest, head = log_heads(stack.database_url, job_ids) if resume else ({}, 0)
    paths = []
    for index in range(streams - list_streams):
        job_id = job_ids[index % len(job_ids)]
        query = f"?last_event_id={latest[job_id]}" if resume else ""
        paths.append(f"/v1/jobs/{job_id}/events{query}")
    return paths + [f"/v1/events{f'?last_event_id={head}' if resume else ''}"] * list_streams


def measure_reads(
    stack: Stack,
    args: argparse.Namespace,
    round_number: int,
    mode: str,
    polled: str,
    job_ids: list[str],
    writer: EpochWriter,
) -> tuple[ReadRun, list[StreamStats], tuple[float, float]]:
    """Status reads on a fresh API with the streams of ``mode`` open."""
    run = ReadRun(round_number, mode)
    label = f"round {round_number}, streams {mode}"
    api: Process | None = None
    clients: StreamClients | None = None
    records: list[StreamStats] = []
    window = (0.0, 0.0)
    try:
        api, base = start_api(stack, SERVER, f"api-r{round_number}-{mode}")
        url = f"{base}/v1/jobs/{polled}"
        wrk_load(url, "GET", None, {}, args.connections, args.warmup, args.scripts)
        workers = api_workers(api.pid)
        time.sleep(1.0)  # wrk's connections closed
        run.rss_before_kib = rss_kib(workers)
        sockets = [socket_count(pid) for pid in workers]
        sampler = BackendSampler(stack.db_name)
        if mode != "none":
            paths = stream_paths(
                stack, job_ids, args.streams, args.list_streams, resume=mode == "following"
            )
            clients = StreamClients(base, paths)
            run.streams_open, run.streams_failed = clients.open, clients.failed
        if mode != "replaying":
            # What the open streams cost with no reads: the API's and PostgreSQL's CPU while
            # every stream waits for, and sends, its job's next epochs.
            time.sleep(1.0)
            idle = CpuAccount(api.pid, stack.db_name, {})
            idle.start()
            time.sleep(args.settle)
            run.upkeep_api_pct, run.upkeep_db_pct = idle.cores_pct()
        if mode == "following":
            run.rss_open_kib = rss_kib(workers)
            run.sockets_per_worker = [
                socket_count(pid) - before for pid, before in zip(workers, sockets, strict=True)
            ]
            run.backends_open = sampler.count()
        side = {"writer": writer.pid} | ({"clients": clients.pid} if clients else {})
        account = CpuAccount(api.pid, stack.db_name, side)
        account.start()
        started = time.monotonic()
        with sampler:
            reads = wrk_load(url, "GET", None, {}, args.connections, args.duration, args.scripts)
        window = (started, time.monotonic())
        account.settle(reads)
        run.reads, run.backends_most = reads, sampler.most
        run.writer_cpu_pct = account.side_pct["writer"]
        run.client_cpu_pct = account.side_pct.get("clients")
        if clients is not None:
            records, clients = clients.stop(), None
            time.sleep(1.0)
            run.rss_closed_kib = rss_kib(workers)
            for stats in records:
                for kind, count in stats.events.items():
                    run.events[kind] = run.events.get(kind, 0) + count
            run.streams_ended = sum(s.ended_by_server or bool(s.error) for s in records)
        per_stream = run.rss_per_stream_kib
        log(
            f"{label}: {reads.rps:.0f} reads/s, p99 {reads.p99_ms:.1f} ms, other work "
            f"{reads.other_busy_pct:.0f}%"
            + (f", {per_stream:.0f} KiB/stream" if per_stream else "")
        )
    except Exception as error:  # noqa: BLE001 - report it, go on with the next configuration
        run.error = f"{type(error).__name__}: {error}"
        log(f"{label} failed: {run.error}")
    finally:
        if clients is not None:
            with contextlib.suppress(Exception):
                clients.stop()
        if api is not None:
            stack.stop(api)
    return run, records, window


@dataclass
class DelayRun:
    """Phase 2 on one backend: one stream, ``epochs`` epochs written a random 0.2-0.6 s apart."""

    backend: str
    wakeups: str
    delivery: Delivery | None = None
    writer_late_s: float | None = None
    error: str | None = None


def measure_delay(stack: Stack, backend: str, wakeups: str, epochs: int) -> DelayRun:
    run = DelayRun(backend, wakeups)
    api: Process | None = None
    writer: EpochWriter | None = None
    clients: StreamClients | None = None
    try:
        (job_id,) = create_jobs(stack.database_url, 1)
        api, base = start_api(stack, SERVER, "api-delay-" + backend.split()[0].lower())
        writer = EpochWriter(stack.database_url, stack.broker_url, [job_id], DELAY_GAPS, epochs)
        clients = StreamClients(base, [f"/v1/jobs/{job_id}/events"])
        if clients.open != 1:
            raise RuntimeError(f"stream not open: {clients.failed}")
        time.sleep(1.0)
        writer.go()
        commits = writer.finish(timeout=epochs * DELAY_GAPS[1] + 60)
        run.writer_late_s = round(float(writer.result["late_s"]), 3)
        writer = None
        time.sleep(2.5)  # the last epochs arrive (a poll, a keep-alive at most)
        records, clients = clients.stop(), None
        run.delivery = match_receipts(commits, records)
        delays = run.delivery.delays_s
        log(f"{backend}: delay median {statistics.median(delays) * 1000:.0f} ms, max "
            f"{max(delays) * 1000:.0f} ms over {len(delays)} epochs")  # fmt: skip
    except Exception as error:  # noqa: BLE001 - report it, go on with the other phases
        run.error = f"{type(error).__name__}: {error}"
        log(f"{backend} delay failed: {run.error}")
    finally:
        for part in (clients, writer):
            if part is not None:
                part.close()
        if api is not None:
            stack.stop(api)
    return run


# --------------------------------------------------------------------------------------------
# Report


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _ms(values: list[float], p: float | None = None) -> str:
    if not values:
        return "–"
    value = statistics.median(values) if p is None else pct(values, p)
    return f"{value * 1000:.0f}"


def _delivery_cells(delivery: Delivery | None) -> str:
    if delivery is None or not delivery.delays_s:
        return "– | – | – | – | –"
    d = delivery.delays_s
    return (
        f"{len(d):,} | {_ms(d)} | {_ms(d, 90)} | {max(d) * 1000:.0f} | "
        f"{delivery.missing} / {delivery.duplicates} / {delivery.out_of_order}"
    )


def render(meta: dict[str, Any], runs: list[ReadRun], delays: list[DelayRun]) -> str:
    streams, lists = meta["streams"], meta["list_streams"]
    out = [
        "Server: `gentrain api` (2 gevent workers, its defaults), a fresh one per measurement. "
        f"Reads: wrk, 1 thread, {meta['connections']} connections, {meta['duration']:g} s after "
        f"{meta['warmup']:g} s of warm-up, of a succeeded job (5 epochs, 1 artifact). Streams: "
        f"{streams} ({streams - lists} of {meta['jobs']} running jobs, {lists} of the job "
        f"list); *following*: opened from the log's head {meta['settle']:g} s before the reads; "
        "*replaying*: opened from the start as the reads begin. A writer process records an "
        f"epoch of each running job every ~{meta['epoch_seconds']:g} s throughout, whatever "
        f"the configuration ({meta.get('writer_epochs_per_s', '?')} epochs/s on average).",
        f"Machine: {meta['machine']}; load average {meta['load_start']} at the start, "
        f"{meta['load_end']} at the end; {meta['background_busy_pct']:.0f}% busy with other work "
        "just before the run.",
        "",
        "**1. Status reads `GET /v1/jobs/<id>` with 0 and with open event streams**",
        "",
        "| round | streams | reads/s | p50 ms | p99 ms | errors | API CPU ms/read "
        "| PostgreSQL CPU ms/read | stream clients CPU % | writer CPU % | machine busy % "
        "| other work % | DB connections (idle / most) | no reads: API / PostgreSQL CPU % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        label = "0" if run.mode == "none" else f"{run.streams_open} {run.mode}"
        if run.reads is None:
            error = " ".join((run.error or "?").split())[:160].replace("|", "/")
            out.append(f"| {run.round} | {label} | failed: {error} |" + " |" * 11)
            continue
        r = run.reads
        out.append(
            f"| {run.round} | {label} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.errors} | {r.api_cpu_ms:.2f} | {r.db_cpu_ms:.2f} | {_num(run.client_cpu_pct)} "
            f"| {_num(run.writer_cpu_pct)} | {r.cpu_busy_pct:.0f} | {r.other_busy_pct:.0f} "
            f"| {_num(run.backends_open)} / {_num(run.backends_most)} "
            f"| {_num(run.upkeep_api_pct)} / {_num(run.upkeep_db_pct)} |"
        )
    out.append("")
    for mode in MODES[1:]:
        ratios = read_ratios(runs, mode)
        out.append(
            f"Ratio {mode} / none, round by round: "
            + (", ".join(f"{ratio:.2f}" for ratio in ratios) or "–")
            + (f"; median **{statistics.median(ratios):.2f}**" if ratios else "")
            + (f" (target ≥ {TARGET_READ_RATIO})." if mode == "following" else ".")
        )
    replays = [run for run in runs if run.replay is not None and run.replay.catch_up_s]
    if replays:
        out += ["", "Replays (each job stream opened from the start): " + "; ".join(
            f"round {run.round}: {statistics.median(run.replay.rows_per_stream):.0f} metrics "
            f"rows a stream (and as many progress entries), all caught up after "
            f"{max(run.replay.catch_up_s):.1f} s"
            for run in replays if run.replay is not None
        ) + "."]  # fmt: skip
    out += [
        "",
        "**2. Delay from a metrics row's commit to its event on the stream** (missing / "
        "duplicated / out of order: of the rows committed while the stream was open)",
        "",
        "| backend | wake-up | streams | events | median ms | p90 ms | max ms "
        "| missing / dup / order | target |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for delay in delays:
        cells = _delivery_cells(delay.delivery) if delay.error is None else "failed | | | |"
        target = TARGET_DELAY_S[delay.backend]
        d = delay.delivery.delays_s if delay.delivery else []
        verdict = ("met" if statistics.median(d) < target else "MISSED") if d else "–"
        out.append(
            f"| {delay.backend} | {delay.wakeups} | 1, nothing else open | {cells} "
            f"| median < {target:g} s: {verdict} |"
        )
    under = Delivery()
    for run in runs:
        if run.delivery is not None and run.mode == "following":
            under.delays_s += run.delivery.delays_s
            under.missing += run.delivery.missing
            under.duplicates += run.delivery.duplicates
            under.out_of_order += run.delivery.out_of_order
    out.append(
        f"| PostgreSQL + Redis | Redis pub/sub | {streams} following, during the reads of "
        f"phase 1 | {_delivery_cells(under)} | |"
    )
    out += [f"\n{d.backend}: {d.error}" for d in delays if d.error]
    out += [
        "",
        "**3. Memory of an open stream** (RSS of the 2 gunicorn workers, summed)",
        "",
        "| round | streams open | sockets added per worker | RSS before MiB | with streams MiB "
        "| per stream KiB | after closing them MiB |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        if run.mode == "following" and run.reads is not None:
            out.append(
                f"| {run.round} | {run.streams_open}"
                f" | {' / '.join(map(str, run.sockets_per_worker))}"
                f" | {run.rss_before_kib / 1024:.1f} | {run.rss_open_kib / 1024:.1f}"
                f" | {_num(run.rss_per_stream_kib)} | {run.rss_closed_kib / 1024:.1f} |"
            )
    return "\n".join(out)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def read_ratios(runs: list[ReadRun], mode: str) -> list[float]:
    """Reads/s with the streams of ``mode`` over reads/s without, in each round."""
    ratios = []
    for number in sorted({run.round for run in runs}):
        by_mode = {run.mode: run.reads for run in runs if run.round == number}
        without, with_streams = by_mode.get("none"), by_mode.get(mode)
        if without and with_streams and without.rps:
            ratios.append(with_streams.rps / without.rps)
    return ratios


# --------------------------------------------------------------------------------------------
# Main


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200, help="streams open (default 200)")
    parser.add_argument("--list-streams", type=int, default=4, help="of them, job-list streams")
    parser.add_argument("--jobs", type=int, default=49, help="running jobs the others watch")
    parser.add_argument("--epoch-seconds", type=float, default=1.0, help="each job's epoch gap")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds of reads per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up reads")
    parser.add_argument(
        "--settle", type=float, default=3, help="seconds streams sit open (measured) before reads"
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections")
    parser.add_argument("--delay-epochs", type=int, default=50)
    parser.add_argument("--skip-embedded", action="store_true", help="no embedded-mode delay")
    parser.add_argument("--quiet-wait", type=float, default=30, help="seconds to wait, in all, "
                        "for other work on the machine to stop")  # fmt: skip
    parser.add_argument("--redis-db", type=int, default=12, help="Redis db to use and flush")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work dirs (logs)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.list_streams < args.streams <= 1000
        and 1 <= args.jobs <= 500
        and 1 <= args.rounds <= 5
        and 1 <= args.duration <= 60
        and 5 <= args.delay_epochs <= 200
        and args.epoch_seconds >= 0.1
    ):
        parser.error("bounded load only: at most 1000 streams, 500 jobs, 5 rounds, 60 s a run")
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    quiet = QuietWaiter(args.quiet_wait)
    background = quiet.wait("the start")
    started = time.monotonic()
    meta: dict[str, Any] = {
        **{k: v for k, v in vars(args).items() if k not in ("json", "keep")},
        "machine": machine_line(),
        "load_start": load_average(),
        "background_busy_pct": round(background, 1),
    }
    runs: list[ReadRun] = []
    delays: list[DelayRun] = []
    with tempfile.TemporaryDirectory() as scripts:
        args.scripts = Path(scripts)
        with full_stack(args.redis_db, args.keep) as stack:
            run_cli(stack, "db", "upgrade")
            quiet.wait("the delay on PostgreSQL")
            delays.append(
                measure_delay(stack, "PostgreSQL + Redis", "Redis pub/sub", args.delay_epochs)
            )
            polled = finished_job(stack.database_url)
            job_ids = create_jobs(stack.database_url, args.jobs)
            gap = (args.epoch_seconds * 0.8, args.epoch_seconds * 1.2)
            writer = EpochWriter(stack.database_url, stack.broker_url, job_ids, gap)
            commits: Commits = {}
            windows: list[tuple[ReadRun, list[StreamStats], tuple[float, float]]] = []
            try:
                writer.go()
                for number in range(1, args.rounds + 1):
                    shift = (number - 1) % len(MODES)  # each mode first, middle and last once
                    for mode in MODES[shift:] + MODES[:shift]:
                        quiet.wait(f"round {number}, streams {mode}")
                        result = measure_reads(stack, args, number, mode, polled, job_ids, writer)
                        runs.append(result[0])
                        windows.append(result)
                commits = writer.stop()
                late = float(writer.result["late_s"])
                meta["writer_epochs_per_s"] = round(len(commits) / writer.result["seconds"], 1)
                meta["writer_late_s"] = round(late, 2)
            finally:
                writer.close()
            for run, records, window in windows:
                if records:
                    run.delivery = match_receipts(commits, records, window)
                    run.replay = replay_of(commits, records) if run.mode == "replaying" else None
        if not args.skip_embedded:
            with embedded_stack(args.keep) as stack:
                quiet.wait("the delay on the embedded default")
                delays.append(
                    measure_delay(
                        stack,
                        "embedded (SQLite, filesystem://)",
                        "polling every 0.5 s",
                        args.delay_epochs,
                    )
                )
    meta["load_end"] = load_average()
    meta["seconds_total"] = round(time.monotonic() - started, 1)
    print(render(meta, runs, delays))
    log(f"done in {meta['seconds_total']:.0f} s")
    if args.json:
        raw = {
            "meta": meta,
            "reads": [asdict(r) for r in runs],
            "delays": [asdict(d) for d in delays],
        }
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    failed = any(r.error for r in runs) or any(d.error for d in delays)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
