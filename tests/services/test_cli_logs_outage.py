"""``gentrain logs -f`` polling through an outage: while the API cannot be reached (restarting,
say) the follower keeps asking from the same offset instead of giving up, and prints the whole
log once, when the API is back."""

from __future__ import annotations

import threading
import time

from werkzeug.serving import make_server

from services.api import create_app
from services.cli.client import ApiClient
from services.cli.log_command import _poll_log
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_log
from shared.settings import Settings
from tests.conftest import create_test_job, free_port

LOG = "[gentrain] attempt 1\nepoch 1/2\nepoch 2/2\n"


def test_a_follower_waits_out_an_api_that_is_down(settings: Settings) -> None:
    job_id = create_test_job(settings.database_url)
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        lease = job.lease
    for line in LOG.splitlines(keepends=True):
        with session_scope(settings.database_url) as session:
            record_log(session, job_id, lease, line, 10_000)
    with session_scope(settings.database_url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, results={})

    port, app, servers = free_port(), create_app(settings), []

    def serve_later() -> None:
        time.sleep(1.5)  # nothing listens on the port until then: connection refused
        servers.append(make_server("127.0.0.1", port, app, threaded=True))
        servers[0].serve_forever()

    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    written: list[str] = []
    try:
        client = ApiClient(f"http://127.0.0.1:{port}", timeout=5)
        page = _poll_log(client, job_id, None, True, written.append, 0)
    finally:
        for server in servers:
            server.shutdown()
        thread.join(5)
    assert "".join(written) == LOG
    assert page["finished"]
