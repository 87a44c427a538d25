"""The job and compare pages on the server (Flask's client), on SQLite and on PostgreSQL with
Redis and S3: what they show of jobs written as a worker writes them, where the job page's
stream resumes, tenancy, and the compare page's rules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.db.session import session_scope
from shared.jobs import record_log
from shared.settings import Settings
from tests.services.api.test_event_stream import stream
from tests.services.ui import written_jobs as w


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings.model_copy(update={"event_keepalive_seconds": 1.0}))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def embedded(html: str, element_id: str) -> Any:
    """The JSON a page embeds for its script."""
    pattern = rf'<script type="application/json" id="{element_id}">(.*?)</script>'
    match = re.search(pattern, html, re.S)
    assert match is not None, element_id
    return json.loads(match.group(1))


def page(
    client: FlaskClient, path: str, status: int = 200, headers: dict[str, str] | None = None
) -> str:
    response = client.get(path, headers=headers or {})
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def autoencoder(url: str, epochs: int, **params: Any) -> str:
    """A succeeded autoencoder of ``epochs`` epochs with its final grid and results."""
    job_id = w.new_job(url, "autoencoder", {"epochs": epochs, **params})
    lease = w.start(url, job_id)
    w.epochs(url, job_id, lease, list(range(1, epochs + 1)), epochs,
             lambda step: {"loss": 0.1 / step, "val_loss": 0.12 / step})  # fmt: skip
    w.artifact(url, job_id, lease, "samples/reconstructions.png")
    w.end(url, job_id, lease, {"x_test_psnr_db": 14.0 + epochs, "x_test_ssim": 0.6})
    return job_id


# The job page.


def test_a_running_job_shows_state_metrics_grids_and_log(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    job_id = w.new_job(url, "gan", {"steps": 400, "steps_per_epoch": 100, "sample_every": 100})
    lease = w.start(url, job_id)
    w.epochs(url, job_id, lease, [100, 200], 400, w.GAN_VALUES, "samples/step-%06d.png")
    html = page(client, f"/ui/jobs/{job_id}")
    data = embedded(html, "job-data")
    assert data["status"] == "running" and not data["terminal"] and data["unit"] == "step"
    assert data["metrics"]["steps"] == [100, 200]
    assert set(data["metrics"]["series"]) == {"d_loss", "g_loss", "d_acc"}
    assert data["metrics"]["series"]["d_acc"] == [0.5, 0.5]
    assert [grid["step"] for grid in data["grids"]] == [100, 200]
    assert data["grids"][0]["url"].endswith(f"/v1/jobs/{job_id}/artifacts/samples/step-000100.png")
    assert data["final_grid_name"] == "samples/generated.png"
    assert data["events_url"] == f"/v1/jobs/{job_id}/events?logs=1"
    assert 'data-status="running"' in html
    assert 'id="cancel-button"' in html and 'id="draw-form"' not in html
    assert 'value="0.5"' in html and "50%" in html  # progress
    assert 'id="job-replicas">2<' in html and 'id="job-global-batch">256<' in html
    log = "".join(f"step {step}/400: {w.GAN_VALUES(step)}\n" for step in (100, 200))
    assert data["log_end"] == len(log) and "step 200/400" in html
    assert 'max="1"' in html  # the slider over two grids


def test_the_stream_resumes_after_what_the_page_shows(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    job_id = w.new_job(url, "autoencoder", {"epochs": 3})
    lease = w.start(url, job_id)
    values = lambda step: {"loss": 1.0 / step}  # noqa: E731
    w.epochs(url, job_id, lease, [1, 2], 3, values)
    data = embedded(page(client, f"/ui/jobs/{job_id}"), "job-data")
    log = "".join(f"step {step}/3: {values(step)}\n" for step in (1, 2))
    assert data["log_end"] == len(log)
    w.epochs(url, job_id, lease, [3], 3, values)
    w.end(url, job_id, lease, {"x_test_psnr_db": 15.0})
    events = list(stream(client, f"{data['events_url']}&last_event_id={data['last_event_id']}"))
    assert [event.data["step"] for event in events if event.type == "metrics"] == [3]
    logs = [event.data for event in events if event.type == "log"]
    assert [(chunk["job_offset"], chunk["text"]) for chunk in logs] == [
        (len(log), f"step 3/3: {values(3)}\n")
    ]
    assert [event.data["status"] for event in events if event.type == "status"] == ["succeeded"]


def test_a_finished_gan_shows_results_grids_artifacts_and_actions(
    client: FlaskClient, settings: Settings
) -> None:
    job_id = w.finished_gan(settings.database_url, steps=1000)
    html = page(client, f"/ui/jobs/{job_id}")
    data = embedded(html, "job-data")
    assert data["terminal"] and data["status"] == "succeeded"
    assert data["metrics"]["steps"] == list(range(100, 1001, 100))
    assert [grid["step"] for grid in data["grids"]] == [500, 1000]
    assert 'id="final-grid-image"' in html
    assert f"/v1/jobs/{job_id}/artifacts/samples/generated.png" in html
    # Results: the scalars, and the digit shares as ten bars.
    assert ">fid<" in html and ">41.5<" in html and ">classifier_score<" in html
    shares = html.split('data-result="digit_shares"', 1)[1].split("</figure>", 1)[0]
    assert shares.count("<rect") == 10 and shares.count(">10%<") == 10
    # Artifacts with download links, the history, the buttons.
    for name in ("model.keras", "checkpoints/latest.npz", "samples/step-000500.png"):
        assert f'href="http://localhost/v1/jobs/{job_id}/artifacts/{name}" download' in html
    assert "3.8 MB" in html
    assert [s for s in re.findall(r'data-status="(\w+)"', html)] == [
        "succeeded", "queued", "running", "succeeded",
    ]  # fmt: skip
    assert 'id="cancel-button"' not in html and 'id="draw-form"' in html
    assert f'href="/ui/new?from={job_id}"' in html
    assert "steps_per_epoch" in html


def test_a_failed_job_shows_its_error(client: FlaskClient, settings: Settings) -> None:
    from shared.job_state import JobStatus
    from shared.jobs import finish

    url = settings.database_url
    job_id = w.new_job(url, "classifier", {"epochs": 2})
    lease = w.start(url, job_id)
    with session_scope(url) as session:
        record_log(session, job_id, lease, "Traceback (most recent call last):\n  boom\n", 10**6)
        finish(session, job_id, lease, JobStatus.FAILED, "labels do not fit <the> classifier")
    html = page(client, f"/ui/jobs/{job_id}")
    assert "labels do not fit &lt;the&gt; classifier" in html  # escaped
    assert "Traceback (most recent call last)" in html
    assert 'id="draw-form"' not in html and 'id="cancel-button"' not in html
    assert "the job did not succeed" in html


def test_a_sampling_job_shows_its_grid_and_its_parent(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    parent = autoencoder(url, 2)
    from shared.jobs import NewJob, create_job

    with session_scope(url) as session:
        sample_id = create_job(
            session,
            NewJob("sample", "autoencoder", "", {"count": 4, "seed": 1}, parent_id=parent),
        )
    lease = w.start(url, sample_id)
    w.artifact(url, sample_id, lease, "samples/grid.png")
    w.end(url, sample_id, lease, {})
    html = page(client, f"/ui/jobs/{sample_id}")
    assert f'href="/ui/jobs/{parent}"' in html
    assert f"/v1/jobs/{sample_id}/artifacts/samples/grid.png" in html
    assert 'id="charts"' not in html and 'id="run-again"' not in html


def test_unknown_and_other_owners_jobs_are_not_found(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth": "required"})
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    client = create_app(secured).test_client()
    url = secured.database_url
    job_id = w.new_job(url, "autoencoder", {"epochs": 1}, owner="alice")
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    assert 'id="job-data"' in page(client, f"/ui/jobs/{job_id}", headers=as_alice)
    missing = page(client, f"/ui/jobs/{job_id}", 404, as_bob)
    assert "Job not found" in missing and 'id="job-data"' not in missing
    assert "Job not found" in page(client, "/ui/jobs/no-such-job", 404, as_alice)
    # Compare: another owner's job is not found either.
    other = w.new_job(url, "autoencoder", {"epochs": 1}, owner="bob")
    page(client, f"/ui/compare?jobs={job_id},{other}", 404, as_alice)


# The compare page.


def test_compare_overlays_curves_and_marks_differences(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    first, second = autoencoder(url, 2), autoencoder(url, 3, encoding_dim=16)
    html = page(client, f"/ui/compare?jobs={first},{second}")
    data = embedded(html, "compare-data")
    assert data["unit"] == "epoch"
    assert [job["label"] for job in data["jobs"]] == [first[:8], second[:8]]
    assert [job["metrics"]["steps"] for job in data["jobs"]] == [[1, 2], [1, 2, 3]]
    assert set(data["jobs"][1]["metrics"]["series"]) == {"loss", "val_loss"}
    params = html.split('id="params"', 1)[1]
    assert re.search(r'<tr class="differs"><th scope="row">epochs', params)
    assert re.search(r'<tr class="differs"><th scope="row">encoding_dim', params)
    results = html.split('id="results"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<tr class="differs"><th scope="row">x_test_psnr_db', results)
    assert re.search(r'<tr class=""><th scope="row">x_test_ssim', results)
    for job_id in (first, second):
        assert f"/v1/jobs/{job_id}/artifacts/samples/reconstructions.png" in html
    # The same, named one by one (the picker's checkboxes).
    assert embedded(page(client, f"/ui/compare?jobs={first}&jobs={second}"), "compare-data") == data


def test_compare_shows_gan_digit_shares_side_by_side(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    gans = [w.finished_gan(url, steps=200) for _ in range(2)]
    html = page(client, f"/ui/compare?jobs={','.join(gans)}")
    assert html.count('data-result="digit_shares"') == 2
    assert [job["metrics"]["steps"] for job in embedded(html, "compare-data")["jobs"]] == [
        [100, 200], [100, 200],
    ]  # fmt: skip


def test_compare_refuses_a_wrong_count_or_a_mix_of_kinds(
    client: FlaskClient, settings: Settings
) -> None:
    url = settings.database_url
    jobs = [autoencoder(url, 1) for _ in range(2)]
    gan = w.finished_gan(url, steps=100)
    one = page(client, f"/ui/compare?jobs={jobs[0]}", 400)
    assert "Pick 2 to 6 jobs" in one and 'id="compare-error"' in one
    seven = ",".join(["a", "b", "c", "d", "e", "f", "g"])
    assert "Pick 2 to 6 jobs" in page(client, f"/ui/compare?jobs={seven}", 400)
    mixed = page(client, f"/ui/compare?jobs={jobs[0]},{gan}", 400)
    assert "one kind" in mixed and "autoencoder, gan" in mixed
    # The same job twice is one job.
    page(client, f"/ui/compare?jobs={jobs[0]},{jobs[0]}", 400)
    page(client, f"/ui/compare?jobs={jobs[0]},no-such-job", 404)


def test_the_picker_lists_succeeded_jobs_of_a_kind(client: FlaskClient, settings: Settings) -> None:
    url = settings.database_url
    done = autoencoder(url, 1)
    running = w.new_job(url, "autoencoder", {"epochs": 5})
    w.start(url, running)
    gan = w.finished_gan(url, steps=100)
    html = page(client, "/ui/compare?kind=autoencoder")
    assert f'value="{done}"' in html and running not in html and gan not in html
    assert 'aria-current="page" class="current">autoencoder<' in html
    gans = page(client, "/ui/compare?kind=gan")
    assert f'value="{gan}"' in gans and done not in gans
    assert 'id="no-jobs"' in page(client, "/ui/compare?kind=denoiser")
