"""The sweeps' pages on both backends: the list, and a sweep's trials sorted by objective, a
scatter of the objective against each parameter linking to the trials' job pages, and a 404
for a sweep that is not there or not the caller's."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from services.api import create_app
from shared.settings import Settings
from tests.services.api.test_sweeps_api import GRID, tiny_npz
from tests.services.test_cli_sweeps import end_trials
from tests.services.ui.test_job_pages import page
from tests.services.ui.test_new_job_page import upload


def finished_sweep(client: FlaskClient, settings: Settings, uploaded: bool = False) -> str:
    """A sweep of GRID whose four trials succeeded (its dataset uploaded first unless it is)."""
    if not uploaded:
        upload(client, "digits", tiny_npz())
    sweep = client.post("/v1/sweeps", json=GRID).get_json()
    url = settings.database_url
    end_trials(url, sweep["id"], sweep["trial_jobs"], 0.05)
    sweep = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    end_trials(url, sweep["id"], sweep["trial_jobs"], 0.02)
    return str(sweep["id"])


def test_sweep_pages(settings: Settings) -> None:
    client = create_app(settings).test_client()
    assert 'id="no-sweeps"' in page(client, "/ui/sweeps")
    sweep_id = finished_sweep(client, settings)
    listed = page(client, "/ui/sweeps")
    assert f'href="/ui/sweeps/{sweep_id}"' in listed and "4 / 4" in listed
    assert 'href="/ui/sweeps"' in listed  # in the top bar
    view = client.get(f"/v1/sweeps/{sweep_id}").get_json()
    html = page(client, f"/ui/sweeps/{sweep_id}?sort=objective")
    linked = re.findall(r'<td><a href="/ui/jobs/([0-9a-f]+)"><code>', html)
    by_objective = sorted(view["trial_jobs"], key=lambda row: row["objective"])
    assert [job_id[:8] for job_id in linked] == [row["job_id"][:8] for row in by_objective]
    assert view["best"]["job_id"] == by_objective[0]["job_id"]
    assert html.count("<circle") == 2 * 4  # a point per trial on each parameter's scatter
    for row in view["trial_jobs"]:
        assert f'<a href="/ui/jobs/{row["job_id"]}"><circle' in html
    page(client, "/ui/sweeps/0123456789abcdef", status=404)


def test_a_sweep_is_cancelled_from_its_page(settings: Settings) -> None:
    """The Cancel button of a sweep with trials to run cancels them and shows the sweep again
    without it; an ended sweep has none and refuses with a notice; an unknown one is a 404."""
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    sweep = client.post("/v1/sweeps", json=GRID).get_json()
    html = page(client, f"/ui/sweeps/{sweep['id']}")
    assert f'action="/ui/sweeps/{sweep["id"]}/cancel"' in html
    assert 'id="cancel-sweep-button"' in html
    done = client.post(f"/ui/sweeps/{sweep['id']}/cancel")
    assert done.status_code == 303 and done.headers["Location"] == f"/ui/sweeps/{sweep['id']}"
    view = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert view["status"] == "cancelled"
    assert {row["status"] for row in view["trial_jobs"]} == {"cancelled"}
    assert 'id="cancel-sweep-button"' not in page(client, f"/ui/sweeps/{sweep['id']}")
    finished = finished_sweep(client, settings, uploaded=True)
    assert 'id="cancel-sweep-button"' not in page(client, f"/ui/sweeps/{finished}")
    refused = client.post(f"/ui/sweeps/{finished}/cancel")
    assert refused.status_code == 409 and "already ended" in refused.get_data(as_text=True)
    assert client.post("/ui/sweeps/0123456789abcdef/cancel").status_code == 404
