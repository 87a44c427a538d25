"""Priorities through the API and the dashboard, on SQLite and on PostgreSQL with Redis and S3:
stored and shown on the job, in lists (filter and order), refused out of range (422) or above
the cap without an admin key (403, naming the field), and on the new-job form and job pages."""

from __future__ import annotations

from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.settings import Settings
from tests.services.ui.test_job_pages import page
from tests.services.ui.test_new_job_page import Elements, tiny_npz, upload


def submit(client: FlaskClient, priority: int | None = None, **headers: str) -> dict[str, object]:
    body: dict[str, object] = {"kind": "autoencoder", "dataset": "digits"}
    if priority is not None:
        body["priority"] = priority
    response = client.post("/v1/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    job: dict[str, object] = response.get_json()
    return job


def test_priority_is_stored_shown_filtered_and_sorted(settings: Settings) -> None:
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    default, urgent, low = submit(client), submit(client, 9), submit(client, 0)
    assert (default["priority"], urgent["priority"], low["priority"]) == (5, 9, 0)
    assert client.get(f"/v1/jobs/{urgent['id']}").get_json()["priority"] == 9
    listed = client.get("/v1/jobs").get_json()["items"]
    assert [job["id"] for job in listed] == [low["id"], urgent["id"], default["id"]]
    assert [job["priority"] for job in listed] == [0, 9, 5]
    by_priority = client.get("/v1/jobs?sort=priority").get_json()["items"]
    assert [job["id"] for job in by_priority] == [urgent["id"], default["id"], low["id"]]
    only = client.get("/v1/jobs?priority=9").get_json()
    assert only["total"] == 1 and only["items"][0]["id"] == urgent["id"]
    for query, field in (("priority=10", "priority"), ("sort=size", "sort")):
        error = client.get(f"/v1/jobs?{query}")
        assert error.status_code == 422 and error.get_json()["error"]["field"] == field
    # A sampling job takes a priority too (from a job that has not succeeded: 409, checked
    # after the priority, which is the request's own).
    bad = client.post(f"/v1/jobs/{default['id']}/samples", json={"priority": -1})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "priority"


def test_above_the_cap_needs_an_admin_key(settings: Settings) -> None:
    keyed = settings.model_copy(update={"auth": "required", "max_priority_without_admin": 6})
    url = keyed.database_url
    _, alice = create_key(url, "alice")
    _, admin = create_key(url, "ops", is_admin=True)
    client = create_app(keyed).test_client()
    as_alice = {"Authorization": f"Bearer {alice}"}
    upload(client, "digits", tiny_npz(), as_alice)
    assert submit(client, 6, **as_alice)["priority"] == 6
    body = {"kind": "autoencoder", "dataset": "digits", "priority": 7}
    refused = client.post("/v1/jobs", json=body, headers=as_alice)
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["field"] == "priority" and "admin" in error["message"]
    assert client.get("/v1/jobs", headers=as_alice).get_json()["total"] == 1  # nothing stored
    upload(client, "digits", tiny_npz(), {"Authorization": f"Bearer {admin}"})
    assert submit(client, 9, Authorization=f"Bearer {admin}")["priority"] == 9


def test_the_dashboard_shows_and_posts_the_priority(settings: Settings) -> None:
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    job = submit(client, 8)
    new = Elements(page(client, "/ui/new"))
    assert "priority" in new.fields
    field = new.by_id["priority"]
    assert (field["min"], field["max"], field["value"]) == ("0", "9", "5")
    again = Elements(page(client, f"/ui/new?from={job['id']}"))
    assert again.by_id["priority"]["value"] == "8"  # "run again" keeps it
    assert 'id="job-priority">8<' in page(client, f"/ui/jobs/{job['id']}")
    assert '<td class="num hide-narrow job-priority">8</td>' in page(client, "/ui/")


def test_openapi_documents_the_priority(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for name in ("AutoencoderSubmission", "GanSubmission", "SampleRequest"):
        priority = schemas[name]["properties"]["priority"]
        assert (priority["minimum"], priority["maximum"], priority["default"]) == (0, 9, 5)
        assert "priority" not in schemas[name].get("required", [])
    assert "priority" in schemas["JobSummary"]["required"]
    assert "priority" in schemas["Job"]["required"]
    listing = document["paths"]["/v1/jobs"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/Priority"} in listing
    assert {"$ref": "#/components/parameters/Sort"} in listing
    assert "403" in document["paths"]["/v1/jobs"]["post"]["responses"]
    assert "X-Request-ID" in document["info"]["description"]
