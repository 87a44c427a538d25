"""What the processes of a benchmark use, read from /proc: CPU (of a server's process group, the
PostgreSQL backends of one database, given pids, Redis, and the whole machine), the RSS of a
gunicorn master's workers, their sockets, and the connections to a database."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import psycopg

from bench.api_load import (
    LOOPBACK,
    LoadResult,
    busy_percent,
    children_cpu_seconds,
    cpu_times,
    processes_cpu_seconds,
)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def pid_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by the live processes ``pids``."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_pids() -> list[int]:
    """The Redis servers on this machine (the broker the benchmark shares with others)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "redis-server":
                    pids.append(int(entry.name))
    return pids


def api_workers(master: int) -> list[int]:
    """The gunicorn workers of ``master`` (its process group, less itself)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != master:
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[2]) == master:
                workers.append(int(entry.name))
    return sorted(workers)


def rss_kib(pids: list[int]) -> int:
    """The resident memory of ``pids``, summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, StopIteration):
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            total += int(next(ln for ln in status if ln.startswith("VmRSS:")).split()[1])
    return total


def socket_count(pid: int) -> int:
    """How many sockets ``pid`` holds open."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(fd.path).startswith("socket:")
    return count


class BackendSampler:
    """The most PostgreSQL backends connected to one database, sampled 4 times a second while
    it is entered."""

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        dsn = f"host={LOOPBACK} port=5432 user=postgres dbname=postgres"
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(psycopg.Error):
                self.most = max(self.most, self.count())

    def __enter__(self) -> BackendSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CpuAccount:
    """CPU used between ``start`` and ``settle``: by the server's process group, by PostgreSQL's
    backends of ``db_name``, by finished children (wrk), by ``side`` processes (named), by Redis;
    and how much of the machine went to none of them (other people's work)."""

    def __init__(self, server_pgid: int, db_name: str, side: dict[str, int]) -> None:
        self.server_pgid, self.db_name, self.side = server_pgid, db_name, side
        self.side_pct: dict[str, float] = {}

    def _now(self) -> tuple[float, float, float, dict[str, float], float]:
        database = processes_cpu_seconds(database=self.db_name) if self.db_name else 0.0
        return (
            processes_cpu_seconds(pgid=self.server_pgid),
            database,
            children_cpu_seconds(),
            {name: pid_cpu_seconds([pid]) for name, pid in self.side.items()},
            pid_cpu_seconds(redis_pids()),
        )

    def start(self) -> None:
        self._machine, self._before = cpu_times(), self._now()
        self._started = time.monotonic()

    def cores_pct(self) -> tuple[float, float]:
        """% of a core the server and the database used since ``start``."""
        seconds = max(1e-3, time.monotonic() - self._started)
        after = self._now()
        return (
            round((after[0] - self._before[0]) / seconds * 100, 1),
            round((after[1] - self._before[1]) / seconds * 100, 1),
        )

    def settle(self, run: LoadResult) -> None:
        """Fill ``run``'s CPU fields (per request, % of a core, % of the machine)."""
        busy = busy_percent(self._machine, cpu_times())
        after = self._now()
        server, database, generator = (after[i] - self._before[i] for i in range(3))
        side = {name: after[3][name] - self._before[3][name] for name in self.side}
        redis = after[4] - self._before[4]
        served, seconds = max(1, run.requests), max(1e-3, run.seconds)
        run.cpu_busy_pct = round(busy, 1)
        run.api_cpu_ms = round(server / served * 1000, 2)
        run.db_cpu_ms = round(database / served * 1000, 2)
        run.generator_cpu_pct = round(generator / seconds * 100, 1)
        self.side_pct = {name: round(cpu / seconds * 100, 1) for name, cpu in side.items()}
        ours = server + database + generator + sum(side.values()) + redis
        other = busy - ours / (seconds * (os.cpu_count() or 1)) * 100
        run.other_busy_pct = round(max(0.0, other), 1)
