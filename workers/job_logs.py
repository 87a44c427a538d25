"""A job's stored log: what it prints and logs while it runs, captured for one run, redacted and
stored in chunks through the reporter (about once a second, at each epoch's end, and before the
job's final status is written).

Captured: every record reaching the root logger (the job's own ``gentrain.job`` lines bare, like
Keras's ``verbose=2``, others with level and logger), warnings (each shown again in each job),
and whatever is written to ``sys.stdout`` and ``sys.stderr``, line by line. The worker's own
output is unchanged: records still reach its handlers and writes still reach its streams.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO, cast

from shared.redaction import Redactor, redacted_settings
from shared.settings import Settings
from workers.engine.reporter import JOB_LOG

log = logging.getLogger(__name__)

# Stores a chunk of the log; False when the log takes no more (the job ended or moved on, or
# its log reached the cap).
Store = Callable[[str], bool]
# A line longer than this is stored in pieces (a progress bar printing without newlines).
MAX_LINE = 16 * 1024

_passing = threading.local()


@contextmanager
def _passing_through() -> Iterator[None]:
    """What this thread writes or logs meanwhile is the capture's own passing on (to the
    worker's streams and handlers) or storing, not the job's: it is not captured again."""
    before = getattr(_passing, "on", False)
    _passing.on = True
    try:
        yield
    finally:
        _passing.on = before


def _is_passing() -> bool:
    return bool(getattr(_passing, "on", False))


class _LineTee:
    """A text stream that passes every write on to ``stream`` and hands complete lines to
    ``add`` (a line is held until its newline, so a secret is never cut between chunks)."""

    def __init__(self, stream: TextIO, add: Callable[[str], None]) -> None:
        self.stream = stream
        self._add = add
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not _is_passing():
            with self._lock:
                self._partial += text
                lines, _, self._partial = self._partial.rpartition("\n")
                if len(self._partial) > MAX_LINE:
                    lines = f"{lines}\n{self._partial}" if lines else self._partial
                    self._partial = ""
            if lines:
                self._add(lines + "\n")
        with _passing_through():
            return self.stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def drain(self) -> None:
        """Hand on a last line that never got its newline."""
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._add(rest + "\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # encoding, fileno, isatty, ...


class _Formatter(logging.Formatter):
    """The job's own lines as they are; anything else with its level and logger."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == JOB_LOG.name and record.levelno == logging.INFO and not record.exc_info:
            return record.getMessage()
        return super().format(record)


class _Handler(logging.Handler):
    def __init__(self, job_log: JobLog) -> None:
        super().__init__(logging.INFO)
        self.job_log = job_log
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        if _is_passing():
            return
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a bad format string is the logger's caller's bug
            text = f"{record.levelname} {record.name}: {record.msg!r} (unformattable)"
        # A line of the job's own (an epoch's end) is stored at once.
        self.job_log.add(text + "\n", now=record.name == JOB_LOG.name)


class JobLog:
    """Captures one run of a job while entered and stores its log through ``store``."""

    def __init__(
        self, store: Store, redact: Redactor, flush_seconds: float = 1.0, max_chars: int = 1 << 20
    ) -> None:
        self.store = store
        self.redact = redact
        self.flush_seconds = flush_seconds
        self.max_chars = max_chars
        self._pending: list[str] = []
        self._pending_chars = 0
        self._lock = threading.Lock()  # the pending lines
        self._flush_lock = threading.Lock()  # chunks leave in the order they were captured
        self._full = False  # the store takes no more
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._handler = _Handler(self)
        self._tees: list[_LineTee] = []
        self._warnings: Any = None
        self._thread: threading.Thread | None = None

    def line(self, text: str) -> None:
        """Add a line of the service's own to the log (a header line, an outcome)."""
        self.add(text.rstrip("\n") + "\n")

    def add(self, text: str, now: bool = False) -> None:
        """Add captured text (whole lines); ``now``: store it without waiting for the tick."""
        with self._lock:
            if self._full or self._pending_chars > self.max_chars:
                return  # the cap drops it anyway: hold no more than one log's worth
            self._pending.append(text)
            self._pending_chars += len(text)
        if now:
            self._wake.set()

    def flush(self) -> None:
        """Store what was captured so far (a failure to store keeps it for the next flush)."""
        with self._flush_lock:
            with self._lock:
                text, self._pending, self._pending_chars = "".join(self._pending), [], 0
            if not text or self._full:
                return
            text = self.redact(text).replace("\x00", "\\x00")
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
            try:
                with _passing_through():
                    more = self.store(text)
            except Exception:  # noqa: BLE001 - the database is down: try again at the next tick
                with _passing_through():
                    log.warning("cannot store a chunk of a job's log; retrying", exc_info=True)
                with self._lock:
                    self._pending.insert(0, text)
                    self._pending_chars += len(text)
                return
            if not more:
                self._full = True

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def __enter__(self) -> JobLog:
        logging.getLogger().addHandler(self._handler)
        self._tees = [_LineTee(sys.stdout, self.add), _LineTee(sys.stderr, self.add)]
        sys.stdout, sys.stderr = cast(TextIO, self._tees[0]), cast(TextIO, self._tees[1])
        # A fresh warnings state: each warning shows once per job, not once per worker life.
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if not _is_passing():
                text = warnings.formatwarning(message, category, filename, lineno, line)
                self.add(f"WARNING {text.rstrip()}\n")
            with _passing_through():
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        self._thread = threading.Thread(target=self._run, name="job-log", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._warnings.__exit__(kind, error, traceback)
        stdout, stderr = self._tees
        for tee in self._tees:
            tee.drain()
        if sys.stdout is stdout:  # else someone replaced it meanwhile: theirs stays
            sys.stdout = stdout.stream
        if sys.stderr is stderr:
            sys.stderr = stderr.stream
        logging.getLogger().removeHandler(self._handler)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def header_lines(
    settings: Settings, worker: str, job_id: str, kind: str, attempt: int, runtime: str
) -> list[str]:
    """The first lines of an attempt's log: who runs it, on what, against which services."""
    redact = Redactor.for_settings(settings)
    if settings.uses_s3:
        endpoint = settings.s3_endpoint_url or f"AWS ({settings.s3_region})"
        storage = f"S3 {redact(endpoint)}, bucket {settings.s3_bucket}"
    else:
        storage = f"local directory {settings.storage_dir}"
    python = f"Python {platform.python_version()}"
    return [
        f"[gentrain] {kind} job {job_id}, attempt {attempt}, on worker {worker or '?'} "
        f"(pid {os.getpid()}, {python})",
        f"[gentrain] {runtime}",
        f"[gentrain] database {redact(settings.database_url)}; storage {storage}",
        "[gentrain] settings: " + ", ".join(redacted_settings(settings)),
    ]
