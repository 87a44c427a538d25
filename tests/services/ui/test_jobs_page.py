"""The jobs page on the server (Flask's client), on SQLite and on PostgreSQL: its rows (status,
progress, key result, run time), filters, pages, tenancy, and where its live stream resumes."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from services.api import create_app
from services.api.event_reads import head
from services.ui.pages_jobs import PAGE_SIZE, key_result
from shared.api_keys import create_key
from shared.db.session import read_connection
from shared.settings import Settings
from tests.services.ui import written_jobs as w
from tests.services.ui.test_job_pages import embedded, page


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-job-id="([0-9a-f]+)"', html)


def row_of(html: str, job_id: str) -> str:
    start = html.index(f'<tr data-job-id="{job_id}"')
    return html[start : html.index("</tr>", start)]


def test_rows_show_status_progress_result_and_run_time(settings: Settings) -> None:
    url = settings.database_url
    client = create_app(settings).test_client()
    gan = w.finished_gan(url, steps=200, block=100)
    running = w.new_job(url, "autoencoder", {"epochs": 4})
    lease = w.start(url, running)
    w.epochs(url, running, lease, [1], 4, lambda step: {"loss": 0.1})
    queued = w.new_job(url, "classifier", {"epochs": 1})
    html = page(client, "/ui/")
    assert row_ids(html) == [queued, running, gan]  # newest first
    done = row_of(html, gan)
    assert 'class="badge status-succeeded"' in done and ">succeeded</span>" in done
    assert 'value="1.0"' in done and "41.5" in done and "fid" in done
    assert f'href="/ui/jobs/{gan}"' in done
    moving = row_of(html, running)
    assert ">running</span>" in moving and 'value="0.25"' in moving and "25%" in moving
    assert ">queued</span>" in row_of(html, queued)
    assert "3 jobs" in html


def test_the_stream_resumes_after_the_change_log_head(settings: Settings) -> None:
    client = create_app(settings).test_client()
    w.new_job(settings.database_url, "autoencoder", {"epochs": 1})
    with read_connection(settings.database_url) as connection:
        current = head(connection)
    data = embedded(page(client, "/ui/"), "jobs-data")
    assert data["events_url"] == "/v1/events"
    assert data["last_event_id"] == str(current) and current > 0
    assert data["job_url"] == "/ui/jobs/JOB_ID" and data["first_page"] is True


def test_filters_and_pages(settings: Settings) -> None:
    url = settings.database_url
    client = create_app(settings).test_client()
    autoencoders = [w.new_job(url, "autoencoder", {"epochs": 1}) for _ in range(PAGE_SIZE + 2)]
    gan = w.finished_gan(url, steps=100, block=100)
    first = page(client, "/ui/?kind=autoencoder")
    assert row_ids(first) == autoencoders[::-1][:PAGE_SIZE]
    assert "Page 1 of 2" in first and 'href="/ui/?kind=autoencoder&amp;page=2"' in first
    second = page(client, "/ui/?kind=autoencoder&page=2")
    assert row_ids(second) == autoencoders[::-1][PAGE_SIZE:]
    assert embedded(second, "jobs-data")["first_page"] is False
    assert row_ids(page(client, "/ui/?status=succeeded")) == [gan]
    assert row_ids(page(client, "/ui/?status=succeeded&kind=autoencoder")) == []
    assert "No jobs match these filters." in page(client, "/ui/?status=failed")
    # Unknown values filter nothing rather than fail.
    assert len(row_ids(page(client, "/ui/?status=nope&kind=nope&page=x"))) == PAGE_SIZE


def test_an_owner_sees_their_jobs_and_an_admin_everyones(settings: Settings) -> None:
    keyed = settings.model_copy(update={"auth": "required"})
    url = keyed.database_url
    _, alice = create_key(url, "alice")
    _, admin = create_key(url, "root", is_admin=True)
    mine = w.new_job(url, "autoencoder", {"epochs": 1}, owner="alice")
    theirs = w.new_job(url, "autoencoder", {"epochs": 1}, owner="bob")
    client: FlaskClient = create_app(keyed).test_client()
    as_alice = page(client, "/ui/", headers={"Authorization": f"Bearer {alice}"})
    assert row_ids(as_alice) == [mine] and ">Owner<" not in as_alice
    as_admin = page(client, "/ui/", headers={"Authorization": f"Bearer {admin}"})
    assert row_ids(as_admin) == [theirs, mine] and ">Owner<" in as_admin
    assert ">bob</td>" in row_of(as_admin, theirs)


def test_the_key_result_of_each_kind() -> None:
    assert key_result("gan", "gan", {"fid": 12.0, "classifier_score": 7.0}) == {
        "name": "fid",
        "value": 12.0,
    }
    assert key_result("autoencoder", "autoencoder", {"val_mse": 0.2, "test_mse": 0.1}) == {
        "name": "test_mse",
        "value": 0.1,
    }
    assert key_result("classifier", "classifier", {"x_test_accuracy": 0.9})["value"] == 0.9
    assert key_result("gan", "sample", {"fid": 1.0}) == {}
    assert key_result("denoiser", "denoiser", {}) == {}
