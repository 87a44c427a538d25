"""Process logs as text (the default) or JSON lines (``GENTRAIN_LOG_FORMAT=json``), each record
carrying the request id, job id and attempt of the work it belongs to.

Context variables say what a process is doing: the API sets the request id for each request,
a worker the job id and attempt for each run of a job. Standard library only: the gunicorn
master imports this module before gevent patches anything.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("gentrain_request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("gentrain_job_id", default=None)
attempt: ContextVar[int | None] = ContextVar("gentrain_attempt", default=None)

# What a LogRecord holds of its own; any other attribute came in ``extra`` and is logged.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_CONTEXT: dict[str, ContextVar[Any]] = {
    "request_id": request_id,
    "job_id": job_id,
    "attempt": attempt,
}


@contextmanager
def job_context(job: str, attempt_number: int | None = None) -> Iterator[None]:
    """Records logged meanwhile (in this thread or task) name ``job`` and its attempt."""
    job_token = job_id.set(job)
    attempt_token = attempt.set(attempt_number)
    try:
        yield
    finally:
        attempt.reset(attempt_token)
        job_id.reset(job_token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, role, logger, message, the request id, job id and
    attempt where they apply, any ``extra`` fields, and the traceback of an exception."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, variable in _CONTEXT.items():
            value = getattr(record, name, None)
            value = variable.get() if value is None else value
            if value is not None:
                entry[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def json_handler(role: str) -> logging.Handler:
    """A handler writing JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role))
    return handler


def configure(role: str, log_format: str, text_format: str | None = None) -> None:
    """Log INFO and above of every logger to stderr, as JSON lines (``log_format`` "json") or
    as ``text_format`` (Python's default without one)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_format == "json":
        root.addHandler(json_handler(role))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(text_format))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
