"""What bench/event_streams.py puts on the event streams, each in a process of its own: a writer
that moves running jobs through epochs as a worker does, and clients that hold many streams open.

Both stamp what they do on this machine's monotonic clock (``time.monotonic``, CLOCK_MONOTONIC,
one clock for every process): the writer the moment each epoch's transaction committed, the
clients the moment each ``metrics`` event arrived. ``match_receipts`` joins the two.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

# (job id, step) -> when its metrics row committed (monotonic seconds)
Commits = dict[tuple[str, int], float]

_SPAWN = multiprocessing.get_context("spawn")


# --------------------------------------------------------------------------------------------
# The writer: claim, then record_epoch under the lease, as the worker does


def _write_epochs(
    database_url: str,
    broker_url: str,
    job_ids: list[str],
    gaps: tuple[float, float],
    max_epochs: int | None,
    pipe: Connection,
) -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from shared.db.session import session_scope
    from shared.jobs import claim, notify, record_epoch

    notify.configure(broker_url)  # as workers/celery_app.py does: commits wake the API's streams
    committed = [0.0]

    def stamp(_session: Session) -> None:
        committed[0] = time.monotonic()

    # First among the after_commit listeners: before the Redis publish, right after COMMIT.
    event.listen(Session, "after_commit", stamp, insert=True)
    leases = {}
    for job_id in job_ids:
        with session_scope(database_url) as session:
            job = claim(session, job_id, "bench-writer@localhost")
            if job is None or job.lease is None:
                raise RuntimeError(f"could not claim job {job_id}")
            leases[job_id] = job.lease
    pipe.send("claimed")
    if pipe.recv() != "go":
        return
    rng = random.Random(11)
    commits: list[tuple[str, int, float]] = []
    started = next_at = time.monotonic()
    late_s = 0.0
    step = 0
    stopped = False
    while not stopped and (max_epochs is None or step < max_epochs):
        step += 1
        for job_id in job_ids:
            # The jobs' epochs spread over the gap; a random gap never beats in step with a poll.
            next_at += rng.uniform(*gaps) / len(job_ids)
            if pipe.poll(max(0.0, next_at - time.monotonic())):
                stopped = True
                break
            late_s = max(late_s, time.monotonic() - next_at)
            next_at = max(next_at, time.monotonic() - 1.0)  # behind by a second: no burst after
            with session_scope(database_url) as session:
                record_epoch(
                    session, job_id, leases[job_id], step=step, values={"loss": 1.0 / step},
                    seconds=gaps[0], progress=min(0.99, step / 10_000), eta_seconds=100.0,
                )  # fmt: skip
            commits.append((job_id, step, committed[0]))
    seconds = time.monotonic() - started
    pipe.send({"commits": commits, "seconds": seconds, "late_s": late_s})


class EpochWriter:
    """A writer process: claims ``job_ids`` at once, records epochs from ``go`` until ``stop``
    (or ``max_epochs`` each), about one per job every ``gaps`` seconds (uniform in the range)."""

    def __init__(
        self,
        database_url: str,
        broker_url: str,
        job_ids: list[str],
        gaps: tuple[float, float],
        max_epochs: int | None = None,
    ) -> None:
        self._pipe, child = _SPAWN.Pipe()
        args = (database_url, broker_url, job_ids, gaps, max_epochs, child)
        self.process = _SPAWN.Process(target=_write_epochs, args=args, daemon=True)
        self.process.start()
        if not self._pipe.poll(120) or self._pipe.recv() != "claimed":
            self.close()
            raise RuntimeError("the epoch writer did not claim its jobs")
        self.result: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def go(self) -> None:
        self._pipe.send("go")

    def finish(self, timeout: float) -> Commits:
        """Wait for the last epoch (or ``timeout``, then stop it); every commit."""
        if not self._pipe.poll(timeout):
            self._pipe.send("stop")
        return self._collect()

    def stop(self) -> Commits:
        self._pipe.send("stop")
        return self._collect()

    def _collect(self) -> Commits:
        if not self._pipe.poll(60):
            raise RuntimeError("the epoch writer did not answer")
        self.result = self._pipe.recv()
        self.close()
        return {(job, step): at for job, step, at in self.result["commits"]}

    def close(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


# --------------------------------------------------------------------------------------------
# The clients: many text/event-stream connections in one asyncio process


@dataclass
class StreamStats:
    """What one stream delivered, and when."""

    path: str
    status: int = 0
    opened_at: float = 0.0  # the response's headers arrived (the server has its waiter)
    closed_at: float = 0.0
    ended_by_server: bool = False
    error: str = ""
    events: dict[str, int] = field(default_factory=dict)
    keepalives: int = 0
    # metrics events: (job id, step, when it arrived)
    receipts: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        parts = self.path.split("?")[0].split("/")
        return parts[3] if len(parts) == 5 and parts[4] == "events" else None


def _take(stats: StreamStats, block: bytes, now: float) -> None:
    kind, data = "message", None
    for line in block.split(b"\n"):
        if line.startswith(b":"):
            stats.keepalives += 1
        elif line.startswith(b"event:"):
            kind = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    if data is None:
        return  # the retry line, or a keep-alive
    stats.events[kind] = stats.events.get(kind, 0) + 1
    if kind == "metrics":
        payload = json.loads(data)
        stats.receipts.append((payload["job_id"], int(payload["step"]), now))


async def _follow(host: str, port: int, stats: StreamStats) -> None:
    writer = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        # HTTP/1.0: the body comes unchunked and ends when the server closes.
        request = f"GET {stats.path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
        writer.write(f"{request}Accept: text/event-stream\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        stats.status = int(head.split(b" ", 2)[1])
        stats.opened_at = time.monotonic()
        if stats.status != 200:
            stats.error = f"HTTP {stats.status}"
            return
        buffer = b""
        while chunk := await reader.read(65536):
            now = time.monotonic()
            *blocks, buffer = (buffer + chunk).split(b"\n\n")
            for block in blocks:
                _take(stats, block, now)
        stats.ended_by_server = True
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
        stats.error = f"{type(error).__name__}: {error}"
    finally:
        stats.closed_at = time.monotonic()
        if writer is not None:
            writer.close()


async def _hold_streams(host: str, port: int, paths: list[str], pipe: Connection) -> None:
    streams = [StreamStats(path) for path in paths]
    tasks = [asyncio.create_task(_follow(host, port, stats)) for stats in streams]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(s.status == 0 and not s.error for s in streams):
        await asyncio.sleep(0.02)
    pipe.send(
        {
            "open": sum(s.status == 200 for s in streams),
            "failed": [s.error or "no answer" for s in streams if s.status != 200][:5],
        }
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(pipe.fileno(), stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send([stats.__dict__ for stats in streams])


def _run_clients(host: str, port: int, paths: list[str], pipe: Connection) -> None:
    asyncio.run(_hold_streams(host, port, paths, pipe))


class StreamClients:
    """A process holding one connection per path of ``base``, until ``stop``."""

    def __init__(self, base: str, paths: list[str]) -> None:
        parsed = urlsplit(base)
        self._pipe, child = _SPAWN.Pipe()
        args = (parsed.hostname, parsed.port, paths, child)
        self.process = _SPAWN.Process(target=_run_clients, args=args, daemon=True)
        self.process.start()
        if not self._pipe.poll(90):
            self.close()
            raise RuntimeError("the stream clients did not open their streams")
        opened = self._pipe.recv()
        self.open: int = opened["open"]
        self.failed: list[str] = opened["failed"]

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def stop(self) -> list[StreamStats]:
        self._pipe.send("stop")
        if not self._pipe.poll(60):
            self.close()
            raise RuntimeError("the stream clients did not answer")
        streams = [StreamStats(**fields) for fields in self._pipe.recv()]
        self.close()
        return streams

    def close(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Joining commits and receipts


@dataclass
class Delivery:
    """Metrics rows committed while streams of their jobs were open, and how they arrived."""

    delays_s: list[float] = field(default_factory=list)
    expected: int = 0  # commits a stream should have delivered (1 s before it closed, at least)
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0


def match_receipts(
    commits: Commits,
    streams: list[StreamStats],
    window: tuple[float, float] | None = None,
) -> Delivery:
    """Delays (arrival - commit) of rows committed after each job stream opened (and within
    ``window``, if given); rows it never delivered, delivered twice, or out of step order."""
    by_job: dict[str, list[tuple[int, float]]] = {}
    for (job_id, step), at in commits.items():
        by_job.setdefault(job_id, []).append((step, at))
    out = Delivery()
    low, high = window or (float("-inf"), float("inf"))
    for stats in streams:
        job_id = stats.job_id
        if job_id is None or stats.status != 200:
            continue
        steps = [step for _, step, _ in stats.receipts]
        out.duplicates += sum(count - 1 for count in Counter(steps).values())
        out.out_of_order += sum(1 for a, b in zip(steps, steps[1:], strict=False) if b <= a)
        arrived = {(job, step): at for job, step, at in stats.receipts}
        for step, at in by_job.get(job_id, []):
            if not (stats.opened_at < at < stats.closed_at - 1.0 and low <= at <= high):
                continue
            out.expected += 1
            received = arrived.get((job_id, step))
            if received is None:
                out.missing += 1
            else:
                out.delays_s.append(received - at)
    return out


@dataclass
class Replay:
    """How job streams opened from the start caught up: metrics rows each replayed (committed
    before it opened), and how long after opening the last of them arrived."""

    rows_per_stream: list[int] = field(default_factory=list)
    catch_up_s: list[float] = field(default_factory=list)


def replay_of(commits: Commits, streams: list[StreamStats]) -> Replay:
    """The replay of every job stream in ``streams``."""
    out = Replay()
    for stats in streams:
        if stats.job_id is None or stats.status != 200:
            continue
        replayed = [
            arrived
            for job_id, step, arrived in stats.receipts
            if commits.get((job_id, step), float("inf")) < stats.opened_at
        ]
        out.rows_per_stream.append(len(replayed))
        if replayed:
            out.catch_up_s.append(max(replayed) - stats.opened_at)
    return out
