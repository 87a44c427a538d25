"""The worker's capture of a job's output, on PostgreSQL with the real reporter: what a job prints,
logs and warns is stored once each, redacted, with the worker's own output unchanged; a failed
attempt's traceback is stored before its final status; a run whose job ended stores nothing."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared.api_keys import KEY_PREFIX
from shared.db.models import JobEvent
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import ChangeType, claim, finish
from shared.redaction import Redactor
from shared.settings import Settings
from shared.storage import open_store
from tests.conftest import create_test_job
from workers.engine.reporter import JOB_LOG, UserError
from workers.job_logs import JobLog, header_lines
from workers.job_reporter import JobReporter
from workers.runner import RunResult, _handle_failure, _job_log

SECRET = "s3-secret-0123456789abcdef"
API_KEY = KEY_PREFIX + "A" * 43


class Recorded(logging.Handler):
    """A real handler standing for the worker's own log: what reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def settings(pg_database: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=pg_database, s3_secret_access_key=SECRET
    )


def running(settings: Settings) -> JobReporter:
    job_id = create_test_job(settings.database_url)
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        lease, attempts = job.lease, job.attempts
    return JobReporter(settings, open_store(settings), job_id, lease, attempts)


def log_events(settings: Settings, job_id: str) -> list[tuple[int, str, dict[str, Any] | None]]:
    with session_scope(settings.database_url) as session:
        rows = session.execute(
            select(JobEvent.id, JobEvent.type, JobEvent.payload)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        ).all()
    return [(row.id, row.type, row.payload) for row in rows]


def stored_text(settings: Settings, job_id: str) -> str:
    events = log_events(settings, job_id)
    return "".join(p["text"] for _, kind, p in events if kind == ChangeType.LOG and p)


def test_prints_logs_and_warnings_are_stored_once_each_and_redacted(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = running(settings)
    worker_log = Recorded()
    root = logging.getLogger()
    root.addHandler(worker_log)
    try:
        with _job_log(settings, reporter):
            print("printed line")
            print(f"the secret is {SECRET} and the key {API_KEY}")
            sys.stderr.write("to stderr\n")
            logging.getLogger("some.library").warning("a library warns")
            JOB_LOG.info("epoch 1/2 - 0.1s - loss: 0.5000")
            warnings.warn("something is deprecated", UserWarning, stacklevel=1)
            sys.stdout.write("no newline at the end")
    finally:
        root.removeHandler(worker_log)
    text = stored_text(settings, reporter.job_id)
    expected = [
        "printed line\n",
        "the secret is *** and the key ***\n",
        "to stderr\n",
        "WARNING some.library: a library warns\n",
        "epoch 1/2 - 0.1s - loss: 0.5000\n",
        "UserWarning: something is deprecated",
        "no newline at the end\n",
    ]
    position = 0
    for piece in expected:  # each once, in order
        assert text.count(piece) == 1, (piece, text)
        assert text.index(piece) >= position, (piece, text)
        position = text.index(piece)
    assert SECRET not in text and API_KEY not in text
    # The worker's own output is untouched: streams and handlers got everything, unredacted.
    out, err = capsys.readouterr()
    assert f"the secret is {SECRET}" in out and "no newline at the end" in out
    assert "to stderr" in err
    assert {"a library warns", "epoch 1/2 - 0.1s - loss: 0.5000"} <= set(worker_log.lines)
    assert sys.stdout is not None and not type(sys.stdout).__name__.endswith("Tee")


def test_the_header_names_services_without_their_secrets(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"database_url": settings.database_url.replace("postgres@", "postgres:pw-9876@")}
    )
    lines = "\n".join(header_lines(settings, "w1@host", "job1", "autoencoder", 2, "TF x"))
    assert "attempt 2" in lines and "w1@host" in lines and "TF x" in lines
    assert "database postgresql+psycopg://postgres:***@127.0.0.1" in lines
    assert "s3_secret_access_key=***" in lines
    assert "pw-9876" not in lines and SECRET not in lines


def test_a_failed_attempts_traceback_is_stored_before_its_status(settings: Settings) -> None:
    reporter = running(settings)

    def train() -> None:
        raise UserError("the classifier needs labels: the dataset has no y_train")

    with _job_log(settings, reporter) as job_log:
        try:
            train()
        except UserError as error:
            assert _handle_failure(settings, reporter, error, job_log) is RunResult.FINISHED
    events = log_events(settings, reporter.job_id)
    text = stored_text(settings, reporter.job_id)
    assert "Traceback (most recent call last)" in text and "in train" in text
    assert "UserError: the classifier needs labels" in text
    assert text.endswith(
        "[gentrain] failed: the classifier needs labels: the dataset has no y_train\n"
    )
    last_id, last_kind, last = events[-1]  # the failure, after every chunk of the log
    assert last_kind == "status" and last is not None and "results" not in last
    assert max(i for i, kind, _ in events if kind == "log") < last_id


def test_a_run_whose_job_ended_stops_storing(settings: Settings) -> None:
    reporter = running(settings)
    stored: list[str] = []

    def store(text: str) -> bool:
        stored.append(text)
        return reporter.store_log(text)

    with JobLog(store, Redactor(), flush_seconds=3600) as job_log:
        print("before the end")
        job_log.flush()
        with session_scope(settings.database_url) as session:
            finish(session, reporter.job_id, reporter.lease, JobStatus.FAILED, "by the reaper")
        print("after the end")
        job_log.flush()  # refused: the job is no longer ours
        print("later still")
    assert stored == ["before the end\n", "after the end\n"]  # nothing tried after the refusal
    assert stored_text(settings, reporter.job_id) == "before the end\n"


def test_a_log_over_its_cap_is_cut_once(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_log_bytes_per_job": 1024})
    reporter = running(settings)
    with _job_log(settings, reporter) as job_log:
        for number in range(200):
            print(f"line {number:04d} of a chatty job")
            if number % 50 == 0:
                job_log.flush()
    text = stored_text(settings, reporter.job_id)
    assert text.count("reached its cap of 1024 characters") == 1 and text.startswith("line 0000")
    assert "line 0199" not in text


def test_prints_under_celerys_stdout_redirect_are_stored_once(settings: Settings) -> None:
    # A Celery pool child's sys.stdout is a LoggingProxy that logs each write as a WARNING of
    # "celery.redirected": the capture must not store that record again.
    from celery.utils.log import LoggingProxy

    reporter = running(settings)
    worker_log = Recorded()
    root = logging.getLogger()
    root.addHandler(worker_log)
    before = sys.stdout
    sys.stdout = LoggingProxy(logging.getLogger("celery.redirected"), logging.WARNING)  # type: ignore[assignment]
    try:
        with _job_log(settings, reporter):
            print("printed in a pool child")
    finally:
        sys.stdout = before
        root.removeHandler(worker_log)
    assert stored_text(settings, reporter.job_id) == "printed in a pool child\n"
    assert "printed in a pool child" in worker_log.lines  # the worker's log still has it
